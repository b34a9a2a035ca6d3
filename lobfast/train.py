"""Training loops: :func:`fit` (early stopping, LR schedule, checkpoints, resume, run
folders), :func:`fit_per_symbol`, :func:`evaluate_per_symbol`, :func:`predict` and
walk-forward studies (:func:`walk_forward`, :func:`walk_forward_per_symbol`).

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

import contextlib
import functools
import inspect
import json
import math
import os
import pickle
import platform
import re
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:
    import torch
except ImportError as e:  # pragma: no cover - exercised only without torch
    raise ImportError("lobfast.train needs PyTorch: pip install 'lobfast[torch]'") from e

from . import backtest as _backtest
from . import evaluate as _evaluate
from ._version import __version__ as _LOBFAST_VERSION
from .errors import _require
from .split import Split
from .torch import BatchLoader, PanelDataset, PanelSplit, WindowDataset, loader
from .windowing import Normalizer, TargetScaler

__all__ = [
    "History",
    "PooledWalkForward",
    "WalkForward",
    "evaluate_per_symbol",
    "fit",
    "fit_per_symbol",
    "predict",
    "resolve_device",
    "walk_forward",
    "walk_forward_per_symbol",
]

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
    if isinstance(data, (WindowDataset, PanelDataset)):
        return loader(data, batch_size, shuffle=shuffle, seed=seed, device=device)
    raise TypeError(
        f"training data must be a WindowDataset, PanelDataset or lobfast.torch loader, not {type(data).__name__}"
    )


def _criterion(
    model: torch.nn.Module, loss: str | None, targets: np.ndarray, huber_delta: float = 1.0
) -> tuple[str, Callable]:
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
        if huber_delta != 1.0 and "delta" not in inspect.signature(own).parameters:
            raise ValueError(f"{type(model).__name__}.loss takes no delta: huber_delta={huber_delta} cannot apply")
        extra = {} if huber_delta == 1.0 else {"delta": huber_delta}
        return loss, lambda pred, y: own(pred, y, base=loss, **extra)
    if loss == "huber":
        f = functools.partial(torch.nn.functional.huber_loss, delta=huber_delta)
    else:
        f = torch.nn.functional.mse_loss

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


_AMP = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _autocast(device: torch.device, amp: str | None):
    """Mixed precision on ``device`` (``"bf16"``, ``"fp16"``), or a no-op context for None."""
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_AMP[amp])


def _evaluate_loss(model, data: BatchLoader, crit, device, dtype, amp: str | None = None) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y, *_ in data:  # a panel's batches carry the symbol too
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            y = y.to(dtype) if y.is_floating_point() else y
            with _autocast(device, amp):
                out = model(x)
            total += float(crit(out.float() if out.is_floating_point() else out, y)) * len(x)
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
    run_dir: str | os.PathLike | None = None,
    huber_delta: float = 1.0,
    amp: str | None = None,
    compile: bool = False,
) -> History:
    """Train ``model`` on ``train`` with Adam; keep the weights of the best validation epoch.

    Parameters
    ----------
    model : ``nn.Module``; its ``task`` (if any) is checked against ``loss`` and the labels.
    train, val : :class:`lobfast.torch.WindowDataset` or :class:`lobfast.torch.PanelDataset`
        (one pooled model over many symbols, e.g. a ``PanelDataset.split``'s train and val;
        shuffled each epoch, reproducibly from ``seed``) or :func:`lobfast.torch.loader`
        objects. Without ``val`` the training loss drives early stopping and the schedule.
    loss : ``"huber"`` / ``"mse"`` (regression) or ``"ce"`` (classes); default from the model's
        head. ``huber_delta`` is the Huber loss's threshold between its squared and linear
        parts (default 1.0; scale targets with :class:`lobfast.TargetScaler` or set it to
        their scale). A model with its own ``loss(pred, y, base=...)`` method (multi-task) uses it.
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
    seed : seeds the data order and dropout (``torch.manual_seed``); with a model built with
        its own ``seed=`` (weights), two CPU runs give the same weights bit for bit.
    amp : mixed precision, ``"bf16"`` or ``"fp16"`` (autocast on the device; fp16 on a GPU
        also scales the loss against underflow), or None (default: full precision).  The
        loss is computed in float32 from the model's outputs.
    compile : train through ``torch.compile(model)`` (the first batches pay for compiling;
        the weights are the model's own, so the returned model is the eager one).
    run_dir : a folder recording the run: ``config.json`` (these settings, the model's class
        and constructor arguments, the data sizes), ``versions.json`` (Python, platform,
        lobfast, NumPy, PyTorch, the device), ``history.json`` and ``training_curves.png``
        (when matplotlib is installed).

    Returns
    -------
    History; the model ends on ``device`` with the best epoch's weights.
    """
    if epochs < 1 or patience < 1:
        raise ValueError(f"epochs and patience must be >= 1, got {epochs} and {patience}")
    if amp is not None and amp not in _AMP:
        raise ValueError(f"amp must be one of {', '.join(map(repr, _AMP))} or None, not {amp!r}")
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
    if not (isinstance(huber_delta, (int, float)) and math.isfinite(huber_delta) and huber_delta > 0):
        raise ValueError(f"huber_delta must be a finite number > 0, not {huber_delta!r}")
    loss_name, crit = _criterion(model, loss, _targets(tr), float(huber_delta))
    dtype = tr.dataset.dtype
    run = None if run_dir is None else _Run(run_dir)
    if run is not None:
        settings = dict(loss=loss_name, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay)
        settings.update(patience=patience, lr_patience=lr_patience, lr_factor=lr_factor, clip=clip, seed=seed)
        settings.update(huber_delta=huber_delta, amp=amp, compile=compile)
        run.json("config.json", {"fit": settings, "model": _model_record(model), "data": _data_record(tr, va)})
        run.json("versions.json", _versions(dev))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    scaler = torch.amp.GradScaler("cuda") if amp == "fp16" and dev.type == "cuda" else None
    step_model = torch.compile(model) if compile else model
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
        for x, y, *_ in tr:
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            y = y.to(dtype) if y.is_floating_point() else y
            opt.zero_grad(set_to_none=True)
            with _autocast(dev, amp):
                out = step_model(x)
            batch_loss = crit(out.float() if out.is_floating_point() else out, y)
            if scaler is not None:
                scaler.scale(batch_loss).backward()
                scaler.unscale_(opt)  # clip the true gradients
            else:
                batch_loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
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
        val_loss = _evaluate_loss(step_model, va, crit, dev, dtype, amp) if va is not None else math.nan
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
    if run is not None:
        run.json("history.json", hist.as_dict())
        run.figure("training_curves.png", lambda path: _evaluate.plot_history(hist.as_dict(), path))
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
    data: Any,
    checkpoint_dir: str | os.PathLike,
    **fit_kwargs: Any,
) -> dict[str, tuple[torch.nn.Module, History]]:
    """One model per symbol; ``make_model(symbol)`` builds it.

    ``data`` is ``{symbol: (train, val)}`` (``val`` may be None), or a panel: a
    :class:`lobfast.torch.PanelSplit` (its train and val panels), a ``(train, val)`` pair of
    :class:`lobfast.torch.PanelDataset` or one PanelDataset (no validation), each symbol
    training on its own part.  A symbol whose validation part has no windows trains without
    one.

    Each symbol trains in ``checkpoint_dir/<symbol>/`` with :func:`fit` (``resume=True``), so
    a rerun after an interruption skips the symbols already finished (their best weights
    are loaded) and continues the one that was cut off. Returns ``{symbol: (model, history)}``;
    :func:`evaluate_per_symbol` scores them, one row per symbol.
    """
    out = {}
    for symbol, (train, val) in _train_val_per_symbol(data).items():
        if not symbol or os.sep in symbol or symbol in (".", ".."):
            raise ValueError(f"symbol {symbol!r} cannot name a checkpoint folder")
        if isinstance(train, WindowDataset) and len(train) == 0:
            raise ValueError(f"{symbol} has no training windows: leave it out of the panel")
        model = make_model(symbol)
        hist = fit(model, train, val, checkpoint_dir=Path(checkpoint_dir) / symbol, resume=True, **fit_kwargs)
        out[symbol] = (model, hist)
    return out


def _train_val_per_symbol(data: Any) -> dict[str, tuple[Any, Any]]:
    """``{symbol: (train, val)}`` from a dict of pairs or from panels."""
    if isinstance(data, PanelSplit):
        data = (data.train, data.val)
    if isinstance(data, PanelDataset):
        data = (data, None)
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], PanelDataset):
        train, val = data
        if val is not None and (not isinstance(val, PanelDataset) or val.symbols != train.symbols):
            raise ValueError("the validation panel must be a PanelDataset of the training panel's symbols, in order")
        return {
            s: (train.parts[k], val.parts[k] if val is not None and len(val.parts[k]) else None)
            for k, s in enumerate(train.symbols)
        }
    if not isinstance(data, Mapping):
        raise TypeError(
            f"data must be {{symbol: (train, val)}}, a PanelSplit, a (train, val) pair of PanelDatasets "
            f"or a PanelDataset, not {type(data).__name__}"
        )
    return dict(data)


def evaluate_per_symbol(model: Any, data: PanelDataset, *, batch_size: int = 1024, device: Any = None):
    """Each symbol's windows of a panel scored by one pooled model or by one model per symbol.

    Parameters
    ----------
    model : a model (pooled), or ``{symbol: model}`` / :func:`fit_per_symbol`'s
        ``{symbol: (model, history)}``.
    data : a labelled :class:`lobfast.torch.PanelDataset` (e.g. a split's ``test``).

    Returns
    -------
    ``({symbol: evaluate_predictions(...)}, table)``: the metrics against each symbol's label
    (classification for integer classes, else regression; labels standardised with
    ``scale_target=True`` and the predictions are turned back to the label's units first), and
    :func:`lobfast.evaluate.summary_table` of them (one row per symbol, then ``ALL``, the
    mean).  Symbols without windows in ``data`` are left out.
    """
    if not isinstance(data, PanelDataset):
        raise TypeError(f"data must be a PanelDataset, not {type(data).__name__}")
    if not data.labelled:
        raise ValueError("the panel has no labels (built with label=None), nothing to score against")
    per_symbol = isinstance(model, Mapping)
    if per_symbol:
        missing = [s for s, p in zip(data.symbols, data.parts) if len(p) and s not in model]
        if missing:
            raise ValueError(f"no model for {', '.join(missing)}")
        pooled = None
    else:
        pooled = predict(model, data, batch_size=batch_size, device=device)
    results = {}
    for k, (s, part) in enumerate(zip(data.symbols, data.parts)):
        if not len(part):
            continue
        if per_symbol:
            m = model[s][0] if isinstance(model[s], tuple) else model[s]
            pred = predict(m, part, batch_size=batch_size, device=device)
        else:
            pred = pooled[data.offsets[k] : data.offsets[k + 1]]
        target = part.targets
        if s in data.scalers:  # labels standardised per symbol: scored in their own units
            pred, target = data.scalers[s].inverse(pred), data.scalers[s].inverse(target)
        task = "regression" if target.dtype.kind == "f" else "classification"
        results[s] = _evaluate.evaluate_predictions(pred, target, task=task)
    if not results:
        raise ValueError("the panel has no windows to score")
    return results, _evaluate.summary_table(results)


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


# ------------------------------------------------------------------------------ run folders
class _Run:
    """A folder that records a run: JSON, arrays and figures, each written atomically."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def _atomic(self, name: str, write: Callable[[Path], None]) -> Path:
        dst = self.path / name
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp{dst.suffix}")
        try:
            write(tmp)
            os.replace(tmp, dst)
        finally:
            tmp.unlink(missing_ok=True)
        return dst

    def json(self, name: str, obj: Any) -> Path:
        text = json.dumps(_plain(obj), indent=1, allow_nan=True)
        return self._atomic(name, lambda p: p.write_text(text + "\n"))

    def npz(self, name: str, **arrays: Any) -> Path:
        def write(p: Path) -> None:
            with open(p, "wb") as fh:
                np.savez(fh, **arrays)

        return self._atomic(name, write)

    def csv(self, name: str, table: Any) -> Path:
        return self._atomic(name, lambda p: table.to_csv(p))

    def figure(self, name: str, draw: Callable[[Path], Any]) -> Path | None:
        """The figure ``draw(path)`` saves, when matplotlib is installed (else nothing)."""
        try:
            return self._atomic(name, draw)
        except ImportError:
            return None


def _plain(x: Any) -> Any:
    """``x`` with NumPy scalars and arrays, tuples and paths turned into JSON types."""
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, (np.integer, np.bool_)):
        return x.item()
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def _versions(device: torch.device) -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "lobfast": _LOBFAST_VERSION,
        "numpy": np.__version__,
        "torch": str(torch.__version__),
        "device": str(device),
        "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "threads": torch.get_num_threads(),
    }


def _model_record(model: torch.nn.Module) -> dict[str, Any]:
    return {
        "class": type(model).__name__,
        "config": getattr(model, "config", None),
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


def _data_record(tr: BatchLoader, va: BatchLoader | None) -> dict[str, Any]:
    ds = tr.dataset
    out = {"train_windows": len(ds), "window": getattr(ds, "T", None), "features": getattr(ds, "names", None)}
    out["val_windows"] = None if va is None else len(va.dataset)
    return out


# ------------------------------------------------------------------------------ walk-forward
@dataclass(repr=False)
class WalkForward:
    """The out-of-sample result of :func:`walk_forward`.

    Attributes
    ----------
    pred : one prediction per row of ``X`` (float64; NaN where the row is in no test block
        or has no full window), each from the fold whose test block holds the row.
    rows : the rows predicted, in time order (each in exactly one fold).
    fold : the fold of each row of ``rows``.
    folds : per fold: ``split`` (the :class:`~lobfast.split.Split`), ``history``, ``metrics``
        (:func:`lobfast.evaluate.evaluate_predictions` on its test block), ``rows``, and the
        ``normalizer`` and target ``scaler`` fitted on its train rows (what
        :func:`lobfast.models.save` keeps with the fold's model).
    metrics : the pooled out-of-sample metrics, against the target and the raw return.
    backtest : :func:`lobfast.backtest.hold_to_horizon` over the pooled signal (with ``book``
        and ``backtest=``), else None.
    models : the trained model of each fold.
    """

    pred: np.ndarray
    rows: np.ndarray
    fold: np.ndarray
    folds: list[dict[str, Any]]
    metrics: dict[str, Any]
    backtest: Any = None
    models: list[torch.nn.Module] = field(default_factory=list)

    def table(self):
        """A pandas DataFrame: one row per fold (``fold 0`` ...) and ``pooled``, metrics as
        columns (``target_spearman``, ``raw_spearman``, ...)."""
        pd = _require("pandas", "pandas")
        rows = {}
        for k, f in enumerate(self.folds):
            flat: dict[str, Any] = {}
            _evaluate._flatten(f["metrics"], "", flat, set())
            rows[f"fold {k}"] = flat
        flat = {}
        _evaluate._flatten(self.metrics, "", flat, set())
        rows["pooled"] = flat
        return pd.DataFrame.from_dict(rows, orient="index")

    def __repr__(self) -> str:
        raw = self.metrics.get("raw", {})
        return (
            f"WalkForward({len(self.folds)} folds, {len(self.rows)} out-of-sample rows; "
            f"rank IC target {self.metrics['target']['spearman']:.3f}, raw {raw.get('spearman', float('nan')):.3f})"
        )


def _row_times(X: Any, book: Any) -> np.ndarray | None:
    """The time of each row: ``X``'s own, else the book's (BookSnapshots or a (ts, bid, ask)
    tuple), else None."""
    for source in (X, book):
        ts = source[0] if isinstance(source, tuple) else getattr(source, "ts", None)
        if ts is not None:
            return np.asarray(ts, dtype=np.int64)
    return None


def _fold_normalizer(normalizer: Any, X: Any, split: Split, valid: Any = None) -> Normalizer | None:
    """A normaliser fitted on the fold's usable training rows only (a method name, a
    Normalizer to copy the settings of, or None)."""
    if normalizer is None:
        return None
    if isinstance(normalizer, str):
        norm = Normalizer(normalizer)
    elif isinstance(normalizer, Normalizer):
        norm = Normalizer(normalizer.method, lookback=normalizer.lookback, period=normalizer.period)
    else:
        raise TypeError(f"normalizer must be a method name, a Normalizer or None, not {type(normalizer).__name__}")
    if norm.method == "rolling_zscore":
        return norm.fit(X, valid=valid)  # each period from earlier periods only: causal on all rows
    return norm.fit(X, rows=split.train, valid=valid)


def walk_forward(
    make_model: Callable[[int], torch.nn.Module],
    X: Any,
    y: Any = None,
    folds: Sequence[Split] | Mapping[str, Sequence[Split]] | None = None,
    *,
    window: int | None = None,
    raw: Any = None,
    normalizer: Any = "zscore",
    valid: Any = None,
    warm_start: bool = False,
    scale_target: bool = False,
    book: Any = None,
    backtest: Mapping[str, Any] | None = None,
    run_dir: str | os.PathLike | None = None,
    seed: int = 0,
    top: int = 5,
    **fit_kwargs: Any,
) -> WalkForward | PooledWalkForward:
    """Retrain per walk-forward fold, predict each fold's test block, and evaluate all the
    out-of-sample predictions together.

    With several symbols in ``X`` (a :class:`lobfast.torch.PanelDataset` or a mapping,
    see *Pooled mode* below), one model per fold trains on every symbol's training rows.

    Fold k (from :func:`lobfast.split.walk_forward`, purged and embargoed there): a model
    ``make_model(k)`` (with ``warm_start``, it starts from fold k-1's trained weights) is fit
    on the fold's train rows (early stopping on its val rows when it has some) with a
    normaliser fitted on those train rows only, and predicts the windows ending in its test
    block.  The predictions of all folds, in time order, are evaluated against the target
    and the raw return (:func:`lobfast.evaluate.evaluate_predictions`), per fold and
    pooled, and traded as one signal when ``book`` and ``backtest`` are given.

    Parameters
    ----------
    make_model : fold number -> a new model.
    X, y : the features (as :class:`lobfast.torch.WindowDataset` takes them: an array,
        BookSnapshots or FeatureFrame) and the target per row (regression).
    folds : the folds, in time order, with disjoint test blocks.
    window : rows per window (T).
    raw : the raw forward return per row, what a position earns (recommended).
    normalizer : ``"zscore"`` (default), ``"decimal_precision"``, ``"rolling_zscore"``, a
        :class:`lobfast.Normalizer` (its settings; fitted again per fold) or None.
    valid : usable rows (default: the book's ``valid``, or all).
    warm_start : start each fold from the previous fold's weights.
    scale_target : train on targets standardised with a :class:`lobfast.TargetScaler`
        fitted on the fold's train rows; predictions are turned back into target units.
    book, backtest : with both, :func:`lobfast.backtest.hold_to_horizon(signal, book,
        **backtest)` on the pooled out-of-sample predictions (``backtest`` holds
        ``horizon`` and any other settings).
    run_dir : a folder recording the study: ``config.json``, ``versions.json``, one
        ``fold_<k>/`` run folder per fold (:func:`fit`), ``predictions.npz`` (rows, ts, fold,
        pred, target, raw), ``metrics.json``, ``metrics.csv`` (per fold and pooled),
        ``backtest.json`` and figures (``predictions.png``, ``pnl.png``).
    seed : fold k trains with ``seed + k``.
    top : pooled mode: the symbols in ``top.csv``.
    fit_kwargs : passed to :func:`fit` (epochs, batch_size, lr, device, progress, ...).

    Pooled mode
    -----------
    ``X`` holds several symbols: ``{symbol: {"X": ..., "y": ..., "folds": ..., "raw": ...,
    "book": ..., "valid": ...}}`` (as :func:`walk_forward_per_symbol` takes them; ``folds``,
    ``raw``, ``book`` and ``valid`` optional there), ``{symbol: (X, y)}`` or ``(X, y, raw)``,
    ``{symbol: WindowDataset}`` or a :class:`lobfast.torch.PanelDataset` (each part's
    features, labels, window and usable windows; ``raw=`` and ``book=`` then as ``{symbol:
    ...}``).  ``y`` is None; ``folds`` is ``{symbol: [Split, ...]}`` (default: each symbol's
    own), fold ``k`` with the same ``boundaries`` for every symbol, as
    :func:`lobfast.split.panel_walk_forward` makes them (purged and embargoed per symbol).

    Fold ``k``: each symbol's normaliser (and target scaler) is fitted on its own training
    rows of the fold; one model ``make_model(k)`` trains on the
    :class:`~lobfast.torch.PanelDataset` of all the symbols' training windows (early
    stopping on their val windows) and predicts each symbol's test block.  A symbol without
    training rows in a fold has no normaliser there and is not predicted in that fold.
    Metrics come per fold, per symbol and pooled (all the symbols' out-of-sample rows,
    symbol after symbol, each in time order); the backtest runs per symbol on its own
    book and is summed.  With ``run_dir``: ``config.json``, ``versions.json``, ``fold_<k>/``,
    ``predictions.npz`` (``symbol`` indexing ``symbols``, rows, ts, fold, pred, target,
    raw), ``metrics.json``, ``metrics.csv``, ``summary.csv`` (per symbol, then mean,
    median, std), ``top.csv`` (the ``top`` symbols by raw rank IC), ``backtest.json``
    (summed and per symbol) and ``predictions.png``.

    Returns
    -------
    :class:`WalkForward`; :class:`PooledWalkForward` in pooled mode.
    """
    if isinstance(X, (Mapping, PanelDataset)):
        if y is not None:
            raise TypeError("with several symbols, each symbol's targets come with its data: pass y=None")
        return _walk_forward_pooled(
            make_model, X, folds, window=window, raw=raw, normalizer=normalizer, valid=valid,
            warm_start=warm_start, scale_target=scale_target, book=book, backtest=backtest,
            run_dir=run_dir, seed=seed, top=top, fit_kwargs=fit_kwargs,
        )  # fmt: skip
    if y is None:
        raise TypeError("walk_forward needs the targets y (or several symbols in X, each with its own)")
    if window is None:
        raise TypeError("walk_forward needs window= (rows per window)")
    if not folds:
        raise ValueError("folds is empty: make them with lobfast.split.walk_forward(...)")
    for bad in ("checkpoint_dir", "run_dir", "seed"):
        if bad in fit_kwargs:
            raise TypeError(f"{bad} is set by walk_forward per fold")
    if (book is None) != (backtest is None):
        raise ValueError("a backtest needs both book= and backtest= (its settings, with horizon)")
    y_arr = np.asarray(y, dtype=np.float64)
    raw_arr = None if raw is None else np.asarray(raw, dtype=np.float64)
    if y_arr.ndim != 1 or (raw_arr is not None and raw_arr.shape != y_arr.shape):
        raise ValueError("y (and raw) must be 1-D, one value per row (walk_forward evaluates one target)")
    n = len(y_arr)
    tests = [np.asarray(f.test) for f in folds]
    for k in range(1, len(folds)):
        if len(tests[k]) and len(tests[k - 1]) and tests[k][0] <= tests[k - 1][-1]:
            raise ValueError(f"fold {k}'s test block does not come after fold {k - 1}'s: folds must be in time order")
    run = None if run_dir is None else _Run(run_dir)
    if run is not None:
        cfg = dict(window=window, warm_start=warm_start, scale_target=scale_target, seed=seed, folds=len(folds))
        cfg.update(rows=n, fit=fit_kwargs)
        cfg.update(normalizer=normalizer if isinstance(normalizer, str) or normalizer is None else normalizer.method)
        cfg["backtest"] = None if backtest is None else dict(backtest)
        cfg["splits"] = [
            {"train": len(f.train), "val": len(f.val), "test": len(f.test), "boundaries": f.boundaries} for f in folds
        ]
        run.json("config.json", cfg)
        run.json("versions.json", _versions(resolve_device(fit_kwargs.get("device", "auto"))))
    pred = np.full(n, np.nan)
    fold_of = np.full(n, -1, np.int64)
    out_folds, trained, previous = [], [], None
    for k, split in enumerate(folds):
        model = make_model(k)
        if warm_start and previous is not None:
            model.load_state_dict(previous.state_dict())
        norm = _fold_normalizer(normalizer, X, split, valid)
        kw = dict(normalizer=norm, valid=valid)
        scaler = TargetScaler().fit(y_arr, rows=split.train) if scale_target else None
        y_fit = y_arr if scaler is None else scaler.transform(y_arr)
        train = WindowDataset(X, y_fit, window, indices=split.train, **kw)
        val = WindowDataset(X, y_fit, window, indices=split.val, **kw) if len(split.val) else None
        if val is not None and len(val) == 0:
            val = None
        test = WindowDataset(X, None, window, indices=split.test, **kw)
        fold_dir = None if run is None else run.path / f"fold_{k}"
        hist = fit(model, train, val, seed=seed + k, run_dir=fold_dir, **fit_kwargs)
        p = predict(model, test) if len(test) else np.empty(0)
        if p.ndim != 1:
            raise ValueError(f"the model of fold {k} gives {p.shape[1]} outputs; walk_forward evaluates one")
        if scaler is not None:
            p = scaler.inverse(p)
        pred[test.ends], fold_of[test.ends] = p, k
        metrics = _evaluate.evaluate_predictions(
            p, y_arr[test.ends], None if raw_arr is None else raw_arr[test.ends], inflation_margin=math.inf
        )
        out_folds.append(
            {
                "split": split,
                "history": hist,
                "metrics": metrics,
                "rows": test.ends,
                "normalizer": norm,
                "scaler": scaler,
            }
        )
        trained.append(model)
        previous = model
    rows = np.flatnonzero(fold_of >= 0)
    if not len(rows):
        raise ValueError("no fold had a test window: check the folds against the window length and valid rows")
    metrics = _evaluate.evaluate_predictions(
        pred[rows], y_arr[rows], None if raw_arr is None else raw_arr[rows]
    )  # pooled: warns when the target flatters the model
    bt = None
    if book is not None:
        bt = _backtest.hold_to_horizon(pred, book, **dict(backtest))
    result = WalkForward(pred, rows, fold_of[rows], out_folds, metrics, bt, trained)
    if run is not None:
        ts = _row_times(X, book)
        run.npz(
            "predictions.npz",
            rows=rows,
            ts=ts[rows] if ts is not None else np.full(len(rows), -1, np.int64),
            fold=fold_of[rows],
            pred=pred[rows],
            target=y_arr[rows],
            raw=raw_arr[rows] if raw_arr is not None else np.full(len(rows), np.nan),
        )
        run.json("metrics.json", {"pooled": metrics, "folds": [f["metrics"] for f in out_folds]})
        run.csv("metrics.csv", result.table())
        realised = raw_arr if raw_arr is not None else y_arr
        run.figure(
            "predictions.png",
            lambda path: _evaluate.plot_predictions(pred[rows], realised[rows], path, title="out of sample"),
        )
        if bt is not None:
            run.json("backtest.json", bt.summary())
            run.figure("pnl.png", lambda path: _backtest.plot_pnl(bt, path))
    return result


def walk_forward_per_symbol(
    make_model: Callable[[str, int], torch.nn.Module],
    data: Mapping[str, Mapping[str, Any]],
    *,
    run_dir: str | os.PathLike | None = None,
    top: int = 5,
    **kwargs: Any,
) -> tuple[dict[str, WalkForward], Any]:
    """:func:`walk_forward` for each symbol: ``data[symbol]`` holds its ``X``, ``y``,
    ``folds`` and optionally ``raw`` and ``book``; ``make_model(symbol, fold)`` builds a
    model; ``kwargs`` go to every study (``window``, ``backtest``, fit settings...).

    Returns ``({symbol: WalkForward}, table)``: the table has one row per symbol of the
    pooled out-of-sample metrics (and the backtest summary), sorted, then ``mean``,
    ``median``, ``std`` rows over the symbols, as a per-symbol study reports them.  With
    ``run_dir``, each symbol's study goes to ``run_dir/<symbol>/``, and ``summary.csv`` (the
    table) and ``top.csv`` (the ``top`` symbols by raw rank IC) to ``run_dir``.
    """
    _require("pandas", "pandas")
    if not data:
        raise ValueError("data is empty: {symbol: {'X': ..., 'y': ..., 'folds': ...}}")
    results = {}
    for symbol, d in data.items():
        if not symbol or os.sep in symbol or symbol in (".", ".."):
            raise ValueError(f"symbol {symbol!r} cannot name a run folder")
        missing = {"X", "y", "folds"} - set(d)
        if missing:
            raise ValueError(f"data[{symbol!r}] lacks {', '.join(sorted(missing))}")
        res = walk_forward(
            lambda k, s=symbol: make_model(s, k),
            d["X"],
            d["y"],
            d["folds"],
            raw=d.get("raw"),
            book=d.get("book"),
            run_dir=None if run_dir is None else Path(run_dir) / symbol,
            **kwargs,
        )
        results[symbol] = res
    table = _symbol_table(results)
    if run_dir is not None:
        _write_summary(_Run(run_dir), table, list(results), top)
    return results, table


def _symbol_table(results: Mapping[str, WalkForward]):
    """One row per symbol (its out-of-sample metrics and backtest summary), sorted, then
    ``mean``, ``median`` and ``std`` rows over the symbols."""
    pd = _require("pandas", "pandas")
    rows = {}
    for symbol, res in results.items():
        flat: dict[str, Any] = {}
        _evaluate._flatten(res.metrics, "", flat, set())
        if res.backtest is not None:
            _evaluate._flatten(res.backtest.summary(), "backtest_", flat, set())
        rows[symbol] = flat
    table = pd.DataFrame.from_dict(rows, orient="index").sort_index()
    numeric = table.select_dtypes("number")
    stats = pd.DataFrame({"mean": numeric.mean(), "median": numeric.median(), "std": numeric.std(ddof=1)}).T
    table = pd.concat([table, stats])
    table.index.name = "symbol"
    return table


def _write_summary(run: _Run, table: Any, symbols: list[str], top: int) -> None:
    """``summary.csv`` (the per-symbol table) and ``top.csv`` (the ``top`` symbols by raw rank IC)."""
    run.csv("summary.csv", table)
    key = "raw_spearman" if "raw_spearman" in table else "target_spearman"
    run.csv("top.csv", table.loc[symbols].sort_values(key, ascending=False).head(top))


# ------------------------------------------------------------------------------ pooled walk-forward
@dataclass(repr=False)
class PooledWalkForward:
    """The out-of-sample result of :func:`walk_forward` over several symbols, one model per fold.

    Attributes
    ----------
    symbols : the symbols, in the order given.
    studies : ``{symbol: WalkForward}``: each symbol's predictions (``pred`` per row of its
        own data, ``rows``, ``fold``), its ``folds`` (its split, the shared ``history``, its
        ``metrics``, ``rows``, ``train_rows`` (the window ends it trained on), ``normalizer``
        and ``scaler``), its out-of-sample ``metrics`` and ``backtest``, and the shared ``models``.
    folds : per fold: ``split`` (``{symbol: Split}``), ``history``, ``metrics`` (all the
        symbols' test rows of the fold together), ``symbols`` (``{symbol: metrics}``),
        ``rows``, ``train_rows``, ``normalizer`` and ``scaler`` (each ``{symbol: ...}``).
    metrics : the pooled out-of-sample metrics (every symbol's rows, symbol after symbol,
        each in time order), against the target and the raw return.
    backtest : the per-symbol backtests summed (:meth:`BacktestResult.summary` keys over
        all the trades; ``exposure`` weighted by each book's rows), or None; each symbol's
        own is ``studies[symbol].backtest``.
    models : the trained model of each fold.
    """

    symbols: list[str]
    studies: dict[str, WalkForward]
    folds: list[dict[str, Any]]
    metrics: dict[str, Any]
    backtest: dict[str, Any] | None = None
    models: list[torch.nn.Module] = field(default_factory=list)

    @property
    def pred(self) -> dict[str, np.ndarray]:
        """``{symbol: one prediction per row}`` (NaN outside the test blocks)."""
        return {s: self.studies[s].pred for s in self.symbols}

    def table(self):
        """A pandas DataFrame: one row per fold (``fold 0`` ...) and ``pooled``, the pooled
        metrics of all the symbols as columns."""
        return WalkForward(np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64), self.folds, self.metrics).table()

    def summary(self):
        """One row per symbol (its out-of-sample metrics and backtest), then ``mean``,
        ``median`` and ``std`` rows, as :func:`walk_forward_per_symbol` reports them."""
        return _symbol_table(self.studies)

    def __repr__(self) -> str:
        raw = self.metrics.get("raw", {})
        n = sum(len(r.rows) for r in self.studies.values())
        return (
            f"PooledWalkForward({len(self.symbols)} symbols, {len(self.folds)} folds, {n} out-of-sample rows; "
            f"rank IC target {self.metrics['target']['spearman']:.3f}, raw {raw.get('spearman', float('nan')):.3f})"
        )


@dataclass
class _Symbol:
    """One symbol's data in a pooled study."""

    X: Any
    y: np.ndarray
    raw: np.ndarray | None
    book: Any
    valid: Any
    folds: Sequence[Split] | None
    window: int | None = None


def _covered(ends: np.ndarray, T: int, n: int) -> np.ndarray:
    """The rows inside at least one window of ``T`` rows ending at ``ends``."""
    marks = np.zeros(n + 1, np.int64)
    np.add.at(marks, ends - T + 1, 1)
    np.add.at(marks, ends + 1, -1)
    return np.cumsum(marks[:n]) > 0


def _symbol_data(symbol: str, d: Any) -> _Symbol:
    if isinstance(d, WindowDataset):
        if not d.labelled:
            raise ValueError(f"data[{symbol!r}] has no labels (built with y=None)")
        # its usable windows (valid rows, known labels, its indices) are the only ones used
        valid = _covered(d.ends, d.T, len(d.X))
        return _Symbol(d.X, d.y, None, None, valid, None, d.T)
    if isinstance(d, tuple):
        if len(d) not in (2, 3):
            raise ValueError(f"data[{symbol!r}] must be (X, y) or (X, y, raw), got a tuple of {len(d)}")
        return _Symbol(d[0], d[1], d[2] if len(d) == 3 else None, None, None, None)
    if isinstance(d, Mapping):
        if {"X", "y"} - set(d):
            raise ValueError(f"data[{symbol!r}] lacks {', '.join(sorted({'X', 'y'} - set(d)))}")
        extra = set(d) - {"X", "y", "folds", "raw", "book", "valid"}
        if extra:
            raise ValueError(f"data[{symbol!r}] has unknown keys {', '.join(sorted(extra))}")
        return _Symbol(d["X"], d["y"], d.get("raw"), d.get("book"), d.get("valid"), d.get("folds"))
    raise TypeError(f"data[{symbol!r}] must be a dict, an (X, y) tuple or a WindowDataset, not {type(d).__name__}")


def _per_symbol(name: str, value: Any, symbols: list[str]) -> dict[str, Any]:
    """``{symbol: value}`` from a mapping that names only known symbols (None: none)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"with several symbols, {name} must be {{symbol: ...}}, not {type(value).__name__}")
    extra = set(map(str, value)) - set(symbols)
    if extra:
        raise ValueError(f"{name} names symbols that are not in the data: {', '.join(map(repr, sorted(extra)))}")
    return {str(k): v for k, v in value.items()}


def _check_targets(symbol: str, d: _Symbol) -> None:
    d.y = np.asarray(d.y, dtype=np.float64)
    d.raw = None if d.raw is None else np.asarray(d.raw, dtype=np.float64)
    if d.y.ndim != 1 or (d.raw is not None and d.raw.shape != d.y.shape):
        raise ValueError(
            f"symbol {symbol!r}: y (and raw) must be 1-D, one value per row (walk_forward evaluates one target)"
        )
    tests = [np.asarray(f.test) for f in d.folds]
    for k in range(1, len(tests)):
        if len(tests[k]) and len(tests[k - 1]) and tests[k][0] <= tests[k - 1][-1]:
            raise ValueError(
                f"symbol {symbol!r}: fold {k}'s test block does not come after fold {k - 1}'s: "
                "folds must be in time order"
            )


def _summed(bts: Mapping[str, Any]) -> dict[str, Any]:
    """The per-symbol backtests as one: summary numbers over all their trades."""
    net = np.concatenate([b.net for b in bts.values()])
    gross = np.concatenate([b.gross for b in bts.values()])
    rows = sum(b.n_rows for b in bts.values())
    sd = float(net.std(ddof=1)) if len(net) > 1 else 0.0
    return {
        "trades": len(net),
        "hit_rate": float(np.mean(net > 0)) if len(net) else math.nan,
        "gross_pnl": float(gross.sum()),
        "net_pnl": float(net.sum()),
        "mean_net_bps": float(net.mean() * 1e4) if len(net) else math.nan,
        "turnover": 2.0 * len(net),
        "exposure": sum(b.exposure * b.n_rows for b in bts.values()) / rows if rows else math.nan,
        "sharpe_per_trade": float(net.mean() / sd) if sd > 0 else math.nan,
        "skipped_invalid": sum(b.skipped_invalid for b in bts.values()),
        "skipped_end": sum(b.skipped_end for b in bts.values()),
        "symbols": len(bts),
    }


def _walk_forward_pooled(
    make_model, data, folds, *, window, raw, normalizer, valid, warm_start, scale_target, book, backtest, run_dir,
    seed, top, fit_kwargs,
) -> PooledWalkForward:  # fmt: skip
    """:func:`walk_forward` over several symbols (its pooled mode)."""
    if isinstance(data, PanelDataset):
        data = dict(zip(data.symbols, data.parts))
    if not data:
        raise ValueError("data is empty: {symbol: {'X': ..., 'y': ..., 'folds': ...}}")
    symbols = [str(s) for s in data]
    for s in symbols:
        if not s or os.sep in s or s in (".", ".."):
            raise ValueError(f"symbol {s!r} cannot name a run folder")
    if len(set(symbols)) != len(symbols):
        raise ValueError("two symbols have the same name")
    for bad in ("checkpoint_dir", "run_dir", "seed"):
        if bad in fit_kwargs:
            raise TypeError(f"{bad} is set by walk_forward per fold")
    studies = {s: _symbol_data(s, d) for s, d in zip(symbols, data.values())}
    given = {"folds": folds, "raw": raw, "book": book, "valid": valid}
    for name, value in given.items():
        for s, v in _per_symbol(name, value, symbols).items():
            if getattr(studies[s], name) is not None:
                raise ValueError(f"{name} of symbol {s!r} is given twice: in its data and in {name}=")
            setattr(studies[s], name, v)
    for s, d in studies.items():
        if d.window is not None:
            if window is not None and window != d.window:
                raise ValueError(f"data[{s!r}] has windows of {d.window} rows, window={window}")
            window = d.window
    if window is None:
        raise TypeError("walk_forward needs window= (rows per window)")
    for s, d in studies.items():
        if not d.folds:
            raise ValueError(f"symbol {s!r} has no folds: make them with lobfast.split.panel_walk_forward(...)")
        _check_targets(s, d)
    first = symbols[0]
    n_folds = len(studies[first].folds)
    for s, d in studies.items():
        if len(d.folds) != n_folds:
            raise ValueError(f"symbol {s!r} has {len(d.folds)} folds, {first!r} {n_folds}")
        for k, (a, b) in enumerate(zip(studies[first].folds, d.folds)):
            if not np.array_equal(a.boundaries, b.boundaries):
                raise ValueError(
                    f"fold {k} of symbol {s!r} starts its parts at {np.asarray(b.boundaries).tolist()}, "
                    f"of {first!r} at {np.asarray(a.boundaries).tolist()}: one pooled model per fold needs "
                    "the same split times for every symbol (lobfast.split.panel_walk_forward)"
                )
    has_raw = {d.raw is not None for d in studies.values()}
    if len(has_raw) > 1:
        raise ValueError("raw is given for some symbols and not others: give it for all or none")
    if backtest is not None and any(d.book is None for d in studies.values()):
        missing = [s for s, d in studies.items() if d.book is None]
        raise ValueError(f"a backtest needs every symbol's book: {', '.join(map(repr, missing))} has none")
    if backtest is None and any(d.book is not None for d in studies.values()):
        raise ValueError("a backtest needs both book= and backtest= (its settings, with horizon)")
    run = None if run_dir is None else _Run(run_dir)
    if run is not None:
        cfg = dict(window=window, warm_start=warm_start, scale_target=scale_target, seed=seed, folds=n_folds)
        cfg.update(symbols=symbols, rows={s: len(d.y) for s, d in studies.items()}, fit=fit_kwargs)
        cfg.update(normalizer=normalizer if isinstance(normalizer, str) or normalizer is None else normalizer.method)
        cfg["backtest"] = None if backtest is None else dict(backtest)
        cfg["splits"] = [
            {
                "boundaries": studies[first].folds[k].boundaries,
                "symbols": {
                    s: {"train": len(f.train), "val": len(f.val), "test": len(f.test)}
                    for s, f in ((s, d.folds[k]) for s, d in studies.items())
                },
            }
            for k in range(n_folds)
        ]
        run.json("config.json", cfg)
        run.json("versions.json", _versions(resolve_device(fit_kwargs.get("device", "auto"))))
    pred = {s: np.full(len(d.y), np.nan) for s, d in studies.items()}
    fold_of = {s: np.full(len(d.y), -1, np.int64) for s, d in studies.items()}
    per_symbol: dict[str, list[dict[str, Any]]] = {s: [] for s in symbols}
    out_folds, trained, previous = [], [], None
    for k in range(n_folds):
        model = make_model(k)
        if warm_start and previous is not None:
            model.load_state_dict(previous.state_dict())
        trains, vals, tests, norms, scalers = {}, {}, {}, {}, {}
        for s, d in studies.items():
            split = d.folds[k]
            if not len(split.train):
                continue  # nothing to fit its normaliser on: not predicted in this fold
            try:
                norms[s] = norm = _fold_normalizer(normalizer, d.X, split, d.valid)
                scalers[s] = scaler = TargetScaler().fit(d.y, rows=split.train) if scale_target else None
                y_fit = d.y if scaler is None else scaler.transform(d.y)
                kw = dict(normalizer=norm, valid=d.valid)
                trains[s] = WindowDataset(d.X, y_fit, window, indices=split.train, **kw)
                if len(split.val):
                    vals[s] = WindowDataset(d.X, y_fit, window, indices=split.val, **kw)
                tests[s] = WindowDataset(d.X, None, window, indices=split.test, **kw)
            except ValueError as e:  # which symbol's data
                raise ValueError(f"symbol {s!r}, fold {k}: {e}") from e
        nonempty = {s: ds for s, ds in trains.items() if len(ds)}
        if not nonempty:
            raise ValueError(f"fold {k} has no training windows in any symbol")
        vals = {s: ds for s, ds in vals.items() if len(ds)}
        val = PanelDataset(vals) if vals else None
        fold_dir = None if run is None else run.path / f"fold_{k}"
        hist = fit(model, PanelDataset(nonempty), val, seed=seed + k, run_dir=fold_dir, **fit_kwargs)
        fold_pred, fold_metrics, fold_rows = [], {}, {}
        for s, d in studies.items():
            test = tests.get(s)
            ends = test.ends if test is not None else np.empty(0, np.int64)
            p = predict(model, test) if len(ends) else np.empty(0)
            if p.ndim != 1:
                raise ValueError(f"the model of fold {k} gives {p.shape[1]} outputs; walk_forward evaluates one")
            if scalers.get(s) is not None:
                p = scalers[s].inverse(p)
            pred[s][ends], fold_of[s][ends] = p, k
            truth = (p, d.y[ends], None if d.raw is None else d.raw[ends])
            fold_pred.append(truth)
            fold_rows[s] = ends
            fold_metrics[s] = _evaluate.evaluate_predictions(*truth, inflation_margin=math.inf)
            per_symbol[s].append(
                {
                    "split": d.folds[k],
                    "history": hist,
                    "metrics": fold_metrics[s],
                    "rows": ends,
                    "train_rows": trains[s].ends if s in trains else np.empty(0, np.int64),
                    "normalizer": norms.get(s),
                    "scaler": scalers.get(s),
                }
            )
        metrics = _evaluate.evaluate_predictions(*_joined(fold_pred), inflation_margin=math.inf)
        out_folds.append(
            {
                "split": {s: d.folds[k] for s, d in studies.items()},
                "history": hist,
                "metrics": metrics,
                "symbols": fold_metrics,
                "rows": fold_rows,
                "train_rows": {s: ds.ends for s, ds in trains.items()},
                "normalizer": norms,
                "scaler": scalers,
            }
        )
        trained.append(model)
        previous = model
    results, pooled = {}, []
    for s, d in studies.items():
        rows = np.flatnonzero(fold_of[s] >= 0)
        if not len(rows):
            results[s] = None
            continue
        raw_rows = None if d.raw is None else d.raw[rows]
        pooled.append((pred[s][rows], d.y[rows], raw_rows))
        m = _evaluate.evaluate_predictions(pred[s][rows], d.y[rows], raw_rows, inflation_margin=math.inf)
        bt = None if backtest is None else _backtest.hold_to_horizon(pred[s], d.book, **dict(backtest))
        results[s] = WalkForward(pred[s], rows, fold_of[s][rows], per_symbol[s], m, bt, trained)
    if not pooled:
        raise ValueError("no fold had a test window: check the folds against the window length and valid rows")
    missing = [s for s, r in results.items() if r is None]
    if missing:
        raise ValueError(f"symbol(s) {', '.join(map(repr, missing))} had no test window in any fold")
    metrics = _evaluate.evaluate_predictions(*_joined(pooled))  # warns when the target flatters the model
    bt_total = None if backtest is None else _summed({s: r.backtest for s, r in results.items()})
    result = PooledWalkForward(symbols, results, out_folds, metrics, bt_total, trained)
    if run is not None:
        _record_pooled(run, result, studies, top)
    return result


def _joined(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]):
    """Predictions, targets and raw returns of several symbols, one after the other."""
    pred, target, raw = zip(*parts)
    return np.concatenate(pred), np.concatenate(target), None if raw[0] is None else np.concatenate(raw)


def _record_pooled(run: _Run, result: PooledWalkForward, studies: Mapping[str, _Symbol], top: int) -> None:
    """A pooled study's files in its run folder."""
    sym, rows, ts, fold, pred, target, raw = [], [], [], [], [], [], []
    for i, s in enumerate(result.symbols):
        r, d = result.studies[s], studies[s]
        t = _row_times(d.X, d.book)
        sym.append(np.full(len(r.rows), i, np.int64))
        rows.append(r.rows)
        ts.append(t[r.rows] if t is not None else np.full(len(r.rows), -1, np.int64))
        fold.append(r.fold)
        pred.append(r.pred[r.rows])
        target.append(d.y[r.rows])
        raw.append(d.raw[r.rows] if d.raw is not None else np.full(len(r.rows), np.nan))
    run.npz(
        "predictions.npz",
        symbols=np.array(result.symbols),
        **{k: np.concatenate(v) for k, v in dict(symbol=sym, rows=rows, ts=ts, fold=fold, pred=pred).items()},
        target=np.concatenate(target),
        raw=np.concatenate(raw),
    )
    run.json(
        "metrics.json",
        {
            "pooled": result.metrics,
            "folds": [f["metrics"] for f in result.folds],
            "fold_symbols": [f["symbols"] for f in result.folds],
            "symbols": {s: r.metrics for s, r in result.studies.items()},
        },
    )
    run.csv("metrics.csv", result.table())
    _write_summary(run, result.summary(), result.symbols, top)
    p = np.concatenate(pred)
    realised = np.concatenate(raw if studies[result.symbols[0]].raw is not None else target)
    run.figure("predictions.png", lambda path: _evaluate.plot_predictions(p, realised, path, title="out of sample"))
    if result.backtest is not None:
        each = {s: r.backtest.summary() for s, r in result.studies.items()}
        run.json("backtest.json", {"summed": result.backtest, "symbols": each})
