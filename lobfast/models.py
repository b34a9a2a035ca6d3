"""PyTorch models for limit-order-book windows, plus scikit-learn baselines.

Every model takes a batch of windows ``x`` of shape ``(B, T, F)`` (batch, time steps from
oldest to newest, features) as a float tensor and is an :class:`torch.nn.Module` with

- ``task``: ``"regression"`` or ``"classification"``;
- ``n_outputs``: the width of the output (the number of classes for classification);
- ``window``: the ``T`` it expects, or ``None`` when any ``T`` works;
- ``receptive_field``: how many of the newest time steps can influence the prediction;
- ``loss(pred, y, base="huber")``: the training loss (cross-entropy for classification,
  Huber or MSE for regression); a generic training loop calls it when present.

Models
------
- :class:`DeepLOB`: Zhang, Zohren & Roberts (2019), convolutions + inception + LSTM.
- :class:`DeepLOBTCN`: the same convolutional front made causal in time, with a dilated
  temporal convolution stack instead of the LSTM; predicts at every step.
- :class:`HierarchicalTCN`: a two-horizon regressor (short and long) fusing a full-resolution
  recent branch with a pooled long branch through cross-attention.
- :class:`Baseline`: standardised ridge or logistic regression on flattened windows or
  on the last row (scikit-learn, imported only when a baseline is built).

For the DeepLOB family ``F = 4 * L`` columns in FI-2010 order, level by level:
``[ask_px1, ask_sz1, bid_px1, bid_sz1, ask_px2, ask_sz2, ...]``.

PyTorch is an optional dependency: ``pip install 'lobfast[torch]'``.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import pickle
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
except ImportError as exc:
    raise ImportError("lobfast.models needs PyTorch: pip install 'lobfast[torch]'") from exc

from ._version import __version__ as _LOBFAST_VERSION
from .containers import BookSnapshots
from .errors import _require, lob_error
from .frame import Frame, holds_labels
from .microstructure import features as _features
from .torch import WindowDataset
from .train import predict as _predict
from .windowing import Normalizer, TargetScaler, _positive, as_features, first_nonfinite

__all__ = [
    "Baseline",
    "DeepLOB",
    "DeepLOBTCN",
    "HierarchicalTCN",
    "Predictor",
    "count_parameters",
    "export",
    "load",
    "save",
]

_HEADS = ("regression", "classification")
_ACTIVATIONS = ("leaky_relu", "relu", "tanh")
_TCN_BLOCKS = ("layer", "residual")
_LOSSES = ("huber", "mse")

# DeepLOB's convolutional front: three blocks of two unpadded (4, 1) convolutions each.
_FRONT_TIME_KERNEL = 4
_FRONT_TIME_CONVS = 6
# The widest inception branch is a (5, 1) convolution.
_INCEPTION_WIDEST = 5
# Steps the front's time convolutions reach into the past (or, unpadded, remove): 18.
_FRONT_REACH = _FRONT_TIME_CONVS * (_FRONT_TIME_KERNEL - 1)
# Shortest window DeepLOB accepts: its unpadded front must leave one step for the LSTM.
_DEEPLOB_MIN_WINDOW = 1 + _FRONT_REACH


# --------------------------------------------------------------------------- validation


def _levels(features: Any) -> int:
    """Book levels L from F = 4 * L columns (FI-2010 layout)."""
    features = _positive(features, "features")
    if features % 4:
        raise ValueError(
            f"features must be divisible by 4 (ask price, ask size, bid price, bid size per level), got F={features}"
        )
    return features // 4


def _dilations(dilations: Sequence[int]) -> tuple[int, ...]:
    out = tuple(_positive(d, "each dilation") for d in dilations)
    if not out:
        raise ValueError("dilations must not be empty")
    return out


def _check_dropout(dropout: float) -> float:
    dropout = float(dropout)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    return dropout


def _check_input(x: Any, features: int, window: int | None) -> None:
    if not torch.is_tensor(x):
        raise TypeError(f"x must be a torch.Tensor of shape (B, T, F), got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(f"x must be 3-D (B, T, F), got shape {tuple(x.shape)}")
    if x.shape[2] != features:
        raise ValueError(f"x has F={x.shape[2]} features (shape {tuple(x.shape)}), the model was built for {features}")
    if x.shape[1] < 1:
        raise ValueError(f"x has no time steps: shape {tuple(x.shape)}")
    if window is not None and x.shape[1] != window:
        raise ValueError(
            f"x has T={x.shape[1]} steps (shape {tuple(x.shape)}), the model was built for window={window}"
        )


def _first_bad_row(values: np.ndarray) -> int | None:
    """Index of the first row holding a NaN or infinity, or None."""
    bad = first_nonfinite(values.reshape(len(values), -1))
    return None if bad is None else bad[0]


# --------------------------------------------------------------------------- building blocks


def _act(name: str) -> nn.Module:
    """The activation module named ``name`` (leaky ReLU uses slope 0.01, as in DeepLOB)."""
    if name == "leaky_relu":
        return nn.LeakyReLU(0.01)
    if name == "relu":
        return nn.ReLU()
    if name == "tanh":
        return nn.Tanh()
    raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {name!r}")


def _time_padding(kernel: int, padding: str) -> tuple[int, int]:
    """(left, right) padding along time for a kernel of ``kernel`` steps."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        return (kernel - 1) // 2, kernel // 2
    if padding == "causal":
        # All padding on the past side: output t then sees inputs t - kernel + 1 .. t only.
        return kernel - 1, 0
    raise ValueError(f"padding must be 'valid', 'same' or 'causal', got {padding!r}")


class _TimeConv2d(nn.Conv2d):
    """A ``(kernel, 1)`` convolution along time of a ``(B, C, T, W)`` map, padded 'valid', 'same' or 'causal'."""

    def __init__(self, c_in: int, c_out: int, kernel: int, padding: str) -> None:
        super().__init__(c_in, c_out, (kernel, 1))
        self._time_pad = _time_padding(kernel, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self._time_pad):
            x = F.pad(x, (0, 0, *self._time_pad))
        return super().forward(x)


class _TimeMaxPool(nn.Module):
    """Stride-1 max pool of ``kernel`` steps along time of a ``(B, C, T, W)`` map."""

    def __init__(self, kernel: int, padding: str) -> None:
        super().__init__()
        self.kernel = kernel
        self._time_pad = _time_padding(kernel, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # -inf padding never wins the max, so padded positions pool over real steps only.
        x = F.pad(x, (0, 0, *self._time_pad), value=float("-inf"))
        return F.max_pool2d(x, (self.kernel, 1), stride=1)


class _CausalConv1d(nn.Conv1d):
    """Dilated Conv1d over ``(B, C, T)`` left-padded so that output t depends on inputs <= t only."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int = 1) -> None:
        super().__init__(c_in, c_out, kernel, dilation=dilation)
        self._left = (kernel - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self._left, 0)))


class _TCNLayer(nn.Module):
    """Causal dilated conv -> BatchNorm1d -> activation -> dropout, plus a residual connection.

    The residual is the identity, or a 1x1 convolution when the channel count changes.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, activation: str, dropout: float) -> None:
        super().__init__()
        self.conv = _CausalConv1d(c_in, c_out, kernel, dilation)
        self.bn = nn.BatchNorm1d(c_out)
        self.act = _act(activation)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.act(self.bn(self.conv(x)))) + self.skip(x)


class _TCNBlock(nn.Module):
    """The standard TCN residual block (Bai, Kolter & Koltun 2018): two causal dilated convs,
    each -> BatchNorm1d -> activation -> dropout (the second without its activation), then
    the activation after adding the residual (identity, or a 1x1 conv for a channel change)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, activation: str, dropout: float) -> None:
        super().__init__()
        self.conv1 = _CausalConv1d(c_in, c_out, kernel, dilation)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.act1 = _act(activation)
        self.conv2 = _CausalConv1d(c_out, c_out, kernel, dilation)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.drop = nn.Dropout(dropout)
        self.act = _act(activation)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.act1(self.bn1(self.conv1(x))))
        h = self.drop(self.bn2(self.conv2(h)))
        return self.act(h + self.skip(x))


def _tcn(
    c_in: int,
    channels: int,
    dilations: tuple[int, ...],
    kernel: int,
    activation: str,
    dropout: float,
    block: str = "layer",
) -> nn.Sequential:
    """A stack of :class:`_TCNLayer` (``block="layer"``) or :class:`_TCNBlock` (``"residual"``),
    one per dilation; only the first may change the channel count."""
    if block not in _TCN_BLOCKS:
        raise ValueError(f"block must be one of {_TCN_BLOCKS}, got {block!r}")
    kind = _TCNLayer if block == "layer" else _TCNBlock
    layers = [
        kind(c_in if i == 0 else channels, channels, kernel, d, activation, dropout) for i, d in enumerate(dilations)
    ]
    return nn.Sequential(*layers)


def _tcn_reach(kernel: int, dilations: Sequence[int], block: str = "layer") -> int:
    """Steps into the past a causal TCN stack adds to the receptive field (two convs a
    residual block)."""
    return (2 if block == "residual" else 1) * (kernel - 1) * sum(dilations)


def _unit(conv: nn.Module, c_out: int, activation: str) -> list[nn.Module]:
    """DeepLOB's conv -> activation -> BatchNorm2d unit (normalisation after the activation, as in the paper)."""
    return [conv, _act(activation), nn.BatchNorm2d(c_out)]


def _conv_block(c_in: int, channels: int, width: int, stride: int, activation: str, padding: str) -> nn.Sequential:
    """One DeepLOB block: a (1, width) conv across the level axis, then two (4, 1) convs along time."""
    across = nn.Conv2d(c_in, channels, (1, width), stride=(1, stride))
    along = [_TimeConv2d(channels, channels, _FRONT_TIME_KERNEL, padding) for _ in range(2)]
    return nn.Sequential(*(layer for conv in (across, *along) for layer in _unit(conv, channels, activation)))


class _Inception(nn.Module):
    """DeepLOB's inception module: 1x1->(3,1), 1x1->(5,1) and maxpool(3,1)->1x1 branches, concatenated."""

    def __init__(self, channels: int, width: int, activation: str, padding: str) -> None:
        super().__init__()

        def reduce() -> list[nn.Module]:
            return _unit(nn.Conv2d(channels, width, 1), width, activation)

        def along(kernel: int) -> list[nn.Module]:
            return _unit(_TimeConv2d(width, width, kernel, padding), width, activation)

        self.branch_3 = nn.Sequential(*reduce(), *along(3))
        self.branch_5 = nn.Sequential(*reduce(), *along(_INCEPTION_WIDEST))
        self.branch_pool = nn.Sequential(_TimeMaxPool(3, padding), *reduce())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch_3(x), self.branch_5(x), self.branch_pool(x)], dim=1)


class _DeepLOBFront(nn.Module):
    """Convolution blocks + inception: ``(B, T, 4L)`` -> ``(B, 3 * inception, T')``.

    The level axis shrinks 4L -> 2L -> L -> 1. Non-causal (DeepLOB): unpadded (4, 1) convs
    (T' = T - 18) and centred inception. Causal: everything left-padded, T' = T.
    """

    def __init__(
        self, levels: int, channels: int, inception: int, activation: str, causal: bool, block2: str | None = None
    ) -> None:
        super().__init__()
        front_pad, inception_pad = ("causal", "causal") if causal else ("valid", "same")
        self.blocks = nn.Sequential(
            _conv_block(1, channels, 2, 2, activation, front_pad),
            _conv_block(channels, channels, 2, 2, block2 or activation, front_pad),
            _conv_block(channels, channels, levels, 1, activation, front_pad),
        )
        self.inception = _Inception(channels, inception, activation, inception_pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inception(self.blocks(x.unsqueeze(1)))  # (B, 3I, T', 1)
        return h.squeeze(3)


class _Predictor(nn.Module):
    """Shared attributes, input checks and loss of the models."""

    task: str
    n_outputs: int
    n_classes: int | None
    features: int
    window: int | None
    receptive_field: int

    def _set_head(self, head: str, n_classes: int, n_outputs: int) -> None:
        if head == "classification":
            n_classes = _positive(n_classes, "n_classes")
            if n_classes < 2:
                raise ValueError(f"n_classes must be >= 2, got {n_classes}")
            self.n_classes, self.n_outputs = n_classes, n_classes
        elif head == "regression":
            self.n_classes, self.n_outputs = None, _positive(n_outputs, "n_outputs")
        else:
            raise ValueError(f"head must be one of {_HEADS}, got {head!r}")
        self.task = head

    def __init__(self) -> None:
        super().__init__()
        # the generator's state before any layer draws its weights: put back when seeded
        self._rng_before = torch.random.get_rng_state()

    def _check(self, x: Any) -> None:
        _check_input(x, self.features, self.window)

    def _finish(self, args: dict[str, Any]) -> None:
        """Remember the constructor's arguments (``config``: what :func:`save` stores to build
        the model again) and, with ``seed``, initialise every weight from that seed alone."""
        names = list(inspect.signature(type(self).__init__).parameters)[1:]
        self.config = {k: list(args[k]) if isinstance(args[k], tuple) else args[k] for k in names if k != "seed"}
        seed, before = args.get("seed"), self.__dict__.pop("_rng_before")
        if seed is None:
            return
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an int >= 0 or None, not {seed!r}")
        # the same weights from the same seed whatever ran before (every layer initialised
        # again, in order), and the caller's generator as it was before the model was built
        torch.manual_seed(int(seed))
        for m in self.modules():
            reset = getattr(m, "reset_parameters", None) or getattr(m, "_reset_parameters", None)
            if m is not self and reset is not None:
                reset()
        torch.random.set_rng_state(before)

    def predict_proba(self, x: Any) -> torch.Tensor:
        """Class probabilities ``(B, n_classes)`` of a classification head, in eval mode
        without gradients (the softmax of the logits ``forward`` returns)."""
        if self.task != "classification":
            raise ValueError("predict_proba needs a classification head; this model is a regressor")
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                return torch.softmax(self(x), dim=1)
        finally:
            self.train(was)

    def loss(self, pred: torch.Tensor, y: torch.Tensor, base: str = "huber", delta: float = 1.0) -> torch.Tensor:
        """Training loss of ``pred = model(x)`` against targets ``y``.

        Classification: cross-entropy; ``y`` holds class indices ``0 .. n_classes - 1``
        (integers, or floats with whole values). Regression: ``base`` ("huber", with threshold
        ``delta``, or "mse") with ``y`` of shape ``(B, n_outputs)``, or ``(B,)`` for one
        output. NaN targets raise ValueError.
        """
        if self.task == "classification":
            return F.cross_entropy(pred, _class_targets(y, pred, self.n_classes or pred.shape[1]))
        return _regression_loss(pred, _match_targets(y, pred), base, delta)


def _match_targets(y: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    y = torch.as_tensor(y, device=pred.device)
    if y.shape != pred.shape:
        if y.numel() != pred.numel() or y.shape[:1] != pred.shape[:1]:
            raise ValueError(f"targets of shape {tuple(y.shape)} do not match predictions of shape {tuple(pred.shape)}")
        y = y.reshape(pred.shape)
    _reject_nan_targets(y)
    return y.to(pred.dtype)


def _reject_nan_targets(y: torch.Tensor) -> None:
    # Unknown labels are NaN in lobfast.labels; training on them would silently poison the loss.
    if y.is_floating_point() and y.numel():
        nan = torch.isnan(y.reshape(len(y), -1)).any(dim=1)
        if bool(nan.any()):
            raise ValueError(f"NaN target at row {int(nan.nonzero()[0, 0])}; drop unlabelled rows before training")


def _class_targets(y: torch.Tensor, pred: torch.Tensor, n_classes: int) -> torch.Tensor:
    y = torch.as_tensor(y, device=pred.device).reshape(-1)
    if y.shape[0] != pred.shape[0]:
        raise ValueError(f"{y.shape[0]} class targets for {pred.shape[0]} predictions")
    _reject_nan_targets(y)
    if y.is_floating_point():
        if not bool((y == y.round()).all()):
            raise ValueError("classification targets must be whole class indices, got fractional values")
    elif y.dtype == torch.bool or y.is_complex():
        raise ValueError(f"classification targets must be integer class indices, got dtype {y.dtype}")
    y = y.long()
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"class targets must lie in 0..{n_classes - 1}, got {int(y.min())}..{int(y.max())}")
    return y


def _regression_loss(pred: torch.Tensor, y: torch.Tensor, base: str, delta: float = 1.0) -> torch.Tensor:
    if base == "huber":
        return F.huber_loss(pred, y, delta=delta)
    if base == "mse":
        return F.mse_loss(pred, y)
    raise ValueError(f"base must be one of {_LOSSES}, got {base!r}")


# --------------------------------------------------------------------------- models


class DeepLOB(_Predictor):
    """DeepLOB (Zhang, Zohren & Roberts, 2019): convolutions over levels and time, inception, LSTM.

    The input ``(B, T, F)`` is viewed as a one-channel image ``(B, 1, T, F)``. Three blocks of
    convolutions pair price and size ((1, 2) stride 2), then bid and ask ((1, 2) stride 2),
    then collapse the ``L = F / 4`` levels ((1, L)); each block adds two unpadded (4, 1)
    convolutions along time, so ``T' = T - 18``. Every convolution is followed by the
    activation and BatchNorm. An inception module (1x1->(3,1), 1x1->(5,1), maxpool->1x1)
    yields ``3 * inception`` channels per step, an LSTM reads the ``T'`` steps and its last
    hidden state goes through dropout to a linear head.

    One ``activation`` is used throughout (the authors' reproduction uses tanh in the second
    block; the parameter count is the same either way).

    Parameters
    ----------
    features : int
        F, a multiple of 4 (FI-2010 column order); default 40 (10 levels).
    window : int
        T the model expects, at least 19; ``receptive_field`` equals it.
    head : {"classification", "regression"}
        Output ``(B, n_classes)`` logits or ``(B, n_outputs)`` values.
    n_classes, n_outputs : int
        Output width for the two heads.
    channels, inception, lstm : int
        Convolution channels C, channels per inception branch I, LSTM hidden size.
    activation : {"leaky_relu", "relu"}
        Leaky ReLU uses slope 0.01.
    dropout : float
        Applied to the LSTM's last hidden state before the head.
    block2_activation : str or None
        The second convolution block's activation; ``"tanh"`` gives the authors' PyTorch
        variant (LeakyReLU, Tanh, LeakyReLU).  None (default): ``activation`` throughout.
    lstm_layers, bidirectional : int, bool
        Stacked LSTM layers (default 1, as in the paper) and a bidirectional LSTM (its last
        step then reads the whole window backwards as well; the head doubles its inputs).
    lstm_input_dropout : float
        Dropout on the inception output before the LSTM, as in the authors' Keras code
        (default 0).
    seed : int or None
        Initialise every weight from this seed alone (the caller's random state is left as
        it was); None (default) draws from torch's global generator.

    Examples
    --------
    >>> import torch
    >>> from lobfast.models import DeepLOB, count_parameters
    >>> model = DeepLOB().eval()
    >>> model(torch.zeros(2, 100, 40)).shape
    torch.Size([2, 3])
    >>> count_parameters(model)
    143907
    """

    def __init__(
        self,
        features: int = 40,
        window: int = 100,
        head: str = "classification",
        n_classes: int = 3,
        n_outputs: int = 1,
        channels: int = 32,
        inception: int = 64,
        lstm: int = 64,
        activation: str = "leaky_relu",
        dropout: float = 0.0,
        seed: int | None = None,
        *,
        block2_activation: str | None = None,
        lstm_layers: int = 1,
        bidirectional: bool = False,
        lstm_input_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        levels = _levels(features)
        window = _positive(window, "window")
        if window < _DEEPLOB_MIN_WINDOW:
            raise ValueError(
                f"DeepLOB needs window >= {_DEEPLOB_MIN_WINDOW} (its unpadded convolutions remove "
                f"{_DEEPLOB_MIN_WINDOW - 1} steps), got {window}"
            )
        self._set_head(head, n_classes, n_outputs)
        self.features, self.window, self.receptive_field = features, window, window
        if block2_activation is not None:
            _act(block2_activation)  # a name it knows
        self.front = _DeepLOBFront(
            levels,
            _positive(channels, "channels"),
            _positive(inception, "inception"),
            activation,
            causal=False,
            block2=block2_activation,
        )
        self.lstm_in_drop = nn.Dropout(_check_dropout(lstm_input_dropout))
        self.lstm = nn.LSTM(
            3 * inception,
            _positive(lstm, "lstm"),
            num_layers=_positive(lstm_layers, "lstm_layers"),
            batch_first=True,
            bidirectional=bool(bidirectional),
        )
        self.drop = nn.Dropout(_check_dropout(dropout))
        self.fc = nn.Linear(lstm * (2 if bidirectional else 1), self.n_outputs)
        self._finish(locals())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        seq, _ = self.lstm(self.lstm_in_drop(self.front(x).transpose(1, 2)))  # (B, T - 18, lstm x directions)
        return self.fc(self.drop(seq[:, -1]))


class DeepLOBTCN(_Predictor):
    """DeepLOB's convolutions and inception made causal, followed by a dilated temporal conv stack.

    Every (k, 1) convolution along time is left-padded by ``k - 1`` (the inception max pool
    too, with -inf), so the time length is preserved and the features at step t depend on
    inputs at steps <= t only. The LSTM is replaced by one causal dilated Conv1d layer per
    dilation (conv -> BatchNorm1d -> activation -> dropout, plus a residual connection,
    a 1x1 conv where the channel count changes). :meth:`forward_sequence` predicts at every
    step; :meth:`forward` returns the prediction at the last one. Any ``T >= 1`` works.

    Receptive field: ``1 + 6 * 3`` (the six (4, 1) front convolutions) ``+ 4`` (the widest
    inception branch, (5, 1)) ``+ (kernel_size - 1) * sum(dilations)``; with the defaults
    ``1 + 18 + 4 + 30 = 53`` steps, stored in ``self.receptive_field``. Steps before the
    window start count as zeros (after each layer's padding), not as unknown data.

    Causality holds in eval mode; in training mode BatchNorm normalises with statistics of
    the whole batch, future steps included, as usual for batch-normalised TCNs.

    Parameters
    ----------
    features : int
        F, a multiple of 4 (FI-2010 column order).
    head, n_classes, n_outputs, channels, inception, activation
        As in :class:`DeepLOB`.
    tcn_channels : int
        Channels of the temporal conv layers.
    dilations : sequence of int
        One TCN layer per dilation.
    kernel_size : int
        Kernel of the TCN convolutions.
    dropout : float
        Used in every TCN layer and before the head.
    block : {"layer", "residual"}
        ``"layer"`` (default): one conv per dilation as above.  ``"residual"``: the standard
        TCN residual block, two dilated causal convs per dilation with the activation after
        the residual add (Bai et al. 2018), which doubles the TCN's reach: 4 blocks with
        dilations 1, 2, 4, 8 and kernel 3 reach ``1 + 2 * 2 * 15 = 61`` steps, as in the
        reference study.  The default head stays classification (as the DeepLOB paper); the
        reference study's regression head is ``head="regression"``.
    seed : int or None
        Initialise every weight from this seed alone (the caller's random state is left as
        it was); None (default) draws from torch's global generator.

    Examples
    --------
    >>> import torch
    >>> from lobfast.models import DeepLOBTCN
    >>> model = DeepLOBTCN(head="regression").eval()
    >>> model(torch.zeros(2, 30, 40)).shape
    torch.Size([2, 1])
    >>> model.forward_sequence(torch.zeros(2, 30, 40)).shape
    torch.Size([2, 30, 1])
    >>> model.receptive_field
    53
    """

    def __init__(
        self,
        features: int = 40,
        head: str = "classification",
        n_classes: int = 3,
        n_outputs: int = 1,
        channels: int = 32,
        inception: int = 64,
        tcn_channels: int = 64,
        dilations: Sequence[int] = (1, 2, 4, 8),
        kernel_size: int = 3,
        activation: str = "leaky_relu",
        dropout: float = 0.0,
        seed: int | None = None,
        *,
        block: str = "layer",
    ) -> None:
        super().__init__()
        levels = _levels(features)
        self._set_head(head, n_classes, n_outputs)
        dilations = _dilations(dilations)
        kernel_size = _positive(kernel_size, "kernel_size")
        dropout = _check_dropout(dropout)
        self.features, self.window = features, None
        if block not in _TCN_BLOCKS:
            raise ValueError(f"block must be one of {_TCN_BLOCKS}, got {block!r}")
        reach = _tcn_reach(kernel_size, dilations, block)
        self.receptive_field = 1 + _FRONT_REACH + (_INCEPTION_WIDEST - 1) + reach
        self.front = _DeepLOBFront(
            levels, _positive(channels, "channels"), _positive(inception, "inception"), activation, causal=True
        )
        tcn_channels = _positive(tcn_channels, "tcn_channels")
        self.tcn = _tcn(3 * inception, tcn_channels, dilations, kernel_size, activation, dropout, block)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(tcn_channels, self.n_outputs)
        self._finish(locals())

    def _hidden(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self.tcn(self.front(x))  # (B, tcn_channels, T)

    def forward_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions at every step, ``(B, T, n_outputs)``; step t uses inputs at steps <= t only."""
        return self.fc(self.drop(self._hidden(x).transpose(1, 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self._hidden(x)[:, :, -1]))


class HierarchicalTCN(_Predictor):
    """Two-horizon regressor: a full-resolution recent branch and a pooled long branch, fused.

    One window of ``T = long_pool * long_steps`` rows (for 100 ms rows and the defaults:
    60 s) feeds two branches, each a 1x1 projection F -> ``channels`` followed by causal
    dilated residual TCN layers (as in :class:`DeepLOBTCN`):

    - short: the last ``short_steps`` rows at full resolution (10 s);
    - long: the whole window average-pooled by ``long_pool`` (60 steps of 1 s).

    The long branch's hidden state at its last step attends to the short branch's hidden
    sequence (``nn.MultiheadAttention``; queries long, keys and values short), and a gate
    mixes the two: ``g = sigmoid(W_g [h_long, attended])``,
    ``fused = g * h_long + (1 - g) * attended``. The predictions are
    ``short = head_s(h_short_last)`` and ``long = head_l(fused) + w * short`` with ``w`` a
    learnable scalar starting at 1. ``forward`` returns ``(B, 2)``: column 0 short-horizon,
    column 1 long-horizon.

    Receptive fields, with ``r = 1 + (kernel_size - 1) * sum(dilations)`` (63 by default):
    the short prediction sees the last ``short_receptive_field = min(short_steps, r)`` rows
    (63); the long prediction sees the last ``receptive_field = max(long_pool *
    min(long_steps, r), short_steps)`` rows: the whole 600-row window by default (the long
    TCN's last step reaches all 60 pooled steps, and the attention reads the whole short
    branch). With dilations (1, 2, 4, 8) (r = 31) the long branch would see only the last
    31 of its 60 steps.

    Parameters
    ----------
    features : int
        F, any positive number of columns.
    short_steps : int
        Rows seen by the short branch, at most ``T``.
    long_pool, long_steps : int
        Pooling factor and length of the long branch; ``T = long_pool * long_steps``.
    channels : int
        Hidden width of both branches; divisible by ``heads``.
    dilations : sequence of int
        One TCN layer per dilation, in each branch.
    heads : int
        Attention heads.
    dropout : float
        Used in the TCN layers, the attention weights, and before the heads.
    short_weight : float
        Weight of the short-horizon term in :meth:`loss`, in [0, 1].
    kernel_size : int
        Kernel of the TCN convolutions.
    activation : {"leaky_relu", "relu"}
        Activation of the TCN layers.
    seed : int or None
        As in :class:`DeepLOB`.
    front : {"none", "deeplob"}
        ``"none"`` (default): each branch projects the raw features.  ``"deeplob"``: the
        reference design, a shared causal DeepLOB convolution + inception front
        (``front_channels``, ``front_inception``; F a multiple of 4) computed once over the
        window and feeding both branches; it adds 22 steps of reach to both.
    short_dilations, long_dilations : sequence of int or None
        Each branch's own dilations (default ``dilations``): the reference study uses 4
        blocks for the short branch and 5 for the long one.
    block : {"layer", "residual"}
        TCN layers as in :class:`DeepLOBTCN`.

    Examples
    --------
    >>> import torch
    >>> from lobfast.models import HierarchicalTCN
    >>> model = HierarchicalTCN(8, short_steps=20, long_pool=5, long_steps=12, channels=16).eval()
    >>> pred = model(torch.zeros(3, 60, 8))
    >>> pred.shape
    torch.Size([3, 2])
    >>> model.loss(pred, torch.zeros(3, 2)).item() >= 0
    True
    """

    def __init__(
        self,
        features: int,
        short_steps: int = 100,
        long_pool: int = 10,
        long_steps: int = 60,
        channels: int = 64,
        dilations: Sequence[int] = (1, 2, 4, 8, 16),
        heads: int = 4,
        dropout: float = 0.0,
        short_weight: float = 0.5,
        kernel_size: int = 3,
        activation: str = "leaky_relu",
        seed: int | None = None,
        *,
        front: str = "none",
        front_channels: int = 32,
        front_inception: int = 64,
        short_dilations: Sequence[int] | None = None,
        long_dilations: Sequence[int] | None = None,
        block: str = "layer",
    ) -> None:
        super().__init__()
        self.task, self.n_outputs, self.n_classes = "regression", 2, None
        self.features = _positive(features, "features")
        if front not in ("none", "deeplob"):
            raise ValueError(f"front must be 'none' or 'deeplob', got {front!r}")
        if block not in _TCN_BLOCKS:
            raise ValueError(f"block must be one of {_TCN_BLOCKS}, got {block!r}")
        self.short_steps = _positive(short_steps, "short_steps")
        self.long_pool = _positive(long_pool, "long_pool")
        self.long_steps = _positive(long_steps, "long_steps")
        self.window = self.long_pool * self.long_steps
        if self.short_steps > self.window:
            raise ValueError(f"short_steps={short_steps} exceeds the window T = long_pool * long_steps = {self.window}")
        channels, heads = _positive(channels, "channels"), _positive(heads, "heads")
        if channels % heads:
            raise ValueError(f"channels={channels} must be divisible by heads={heads}")
        self.short_weight = float(short_weight)
        if not 0.0 <= self.short_weight <= 1.0:
            raise ValueError(f"short_weight must be in [0, 1], got {short_weight}")
        dilations, dropout = _dilations(dilations), _check_dropout(dropout)
        short_d = dilations if short_dilations is None else _dilations(short_dilations)
        long_d = dilations if long_dilations is None else _dilations(long_dilations)
        kernel_size = _positive(kernel_size, "kernel_size")
        # a shared causal DeepLOB front reaches this many steps before each branch's inputs
        f = _FRONT_REACH + (_INCEPTION_WIDEST - 1) if front == "deeplob" else 0
        reach_s = 1 + _tcn_reach(kernel_size, short_d, block)
        reach_l = 1 + _tcn_reach(kernel_size, long_d, block)
        self.short_receptive_field = min(self.window, min(self.short_steps, reach_s) + f)
        self.receptive_field = min(
            self.window, max(self.long_pool * min(self.long_steps, reach_l), self.short_steps) + f
        )

        c_in = self.features
        self.front = None
        if front == "deeplob":
            front_inception = _positive(front_inception, "front_inception")
            self.front = _DeepLOBFront(
                _levels(self.features), _positive(front_channels, "front_channels"), front_inception, activation, True
            )
            c_in = 3 * front_inception
        self.short_proj = nn.Conv1d(c_in, channels, 1)
        self.short_tcn = _tcn(channels, channels, short_d, kernel_size, activation, dropout, block)
        self.long_proj = nn.Conv1d(c_in, channels, 1)
        self.long_tcn = _tcn(channels, channels, long_d, kernel_size, activation, dropout, block)
        self.attention = nn.MultiheadAttention(channels, heads, dropout=dropout, batch_first=True)
        self.gate = nn.Linear(2 * channels, channels)
        self.drop = nn.Dropout(dropout)
        self.head_short = nn.Linear(channels, 1)
        self.head_long = nn.Linear(channels, 1)
        self.short_to_long = nn.Parameter(torch.ones(()))
        self._finish(locals())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        seq = x.transpose(1, 2) if self.front is None else self.front(x)  # (B, F or 3 x front_inception, T)
        h_short = self.short_tcn(self.short_proj(seq[:, :, -self.short_steps :]))  # (B, C, short_steps)
        # Pooling before the (linear) projection gives the same result as after, on fewer steps.
        h_long = self.long_tcn(self.long_proj(F.avg_pool1d(seq, self.long_pool)))  # (B, C, long_steps)
        keys = h_short.transpose(1, 2)
        # Only the last long step is used, and attention treats queries independently, so
        # querying with that step alone equals attending the whole long sequence and slicing.
        h_long_last = h_long[:, :, -1]
        attended, _ = self.attention(h_long_last.unsqueeze(1), keys, keys, need_weights=False)
        attended = attended[:, 0]
        g = torch.sigmoid(self.gate(torch.cat([h_long_last, attended], dim=1)))
        fused = g * h_long_last + (1 - g) * attended
        short_pred = self.head_short(self.drop(h_short[:, :, -1]))
        long_pred = self.head_long(self.drop(fused)) + self.short_to_long * short_pred
        return torch.cat([short_pred, long_pred], dim=1)

    def loss(self, pred: torch.Tensor, y: torch.Tensor, base: str = "huber", delta: float = 1.0) -> torch.Tensor:
        """``short_weight * L(short) + (1 - short_weight) * L(long)``, L Huber (threshold
        ``delta``) or MSE; y is ``(B, 2)``.

        NaN targets raise ValueError.
        """
        y = _match_targets(y, pred)
        short = _regression_loss(pred[:, 0], y[:, 0], base, delta)
        long = _regression_loss(pred[:, 1], y[:, 1], base, delta)
        return self.short_weight * short + (1 - self.short_weight) * long


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters of ``model``.

    Examples
    --------
    >>> from torch import nn
    >>> count_parameters(nn.Linear(3, 2))
    8
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --------------------------------------------------------------------------- baselines


class Baseline:
    """Standardised ridge or logistic regression on windows (scikit-learn).

    A ``Pipeline(StandardScaler, Ridge(alpha))`` or
    ``Pipeline(StandardScaler, LogisticRegression(C=1/alpha, max_iter=1000))``.
    ``X`` is ``(N, T, F)`` windows or ``(N, F)`` rows; ``features="flat"`` flattens windows
    to ``T * F`` columns, ``features="last"`` keeps the last row of each window only (for
    engineered features that already summarise the past).

    Parameters
    ----------
    kind : {"ridge", "logistic"}
        Regression or classification.
    alpha : float
        Ridge penalty, or inverse of logistic regression's C.
    features : {"flat", "last"}
        How windows become one row.

    Examples
    --------
    >>> import numpy as np
    >>> from lobfast.models import Baseline
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 5, 3))
    >>> y = X[:, -1, 0] - 2 * X[:, -1, 2]
    >>> model = Baseline("ridge", alpha=0.1, features="last").fit(X, y)
    >>> bool(np.allclose(model.predict(X[:3]), y[:3], atol=0.05))
    True
    """

    def __init__(self, kind: str = "ridge", alpha: float = 1.0, features: str = "flat") -> None:
        try:
            from sklearn.linear_model import LogisticRegression, Ridge
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler
        except ImportError as exc:
            raise ImportError("lobfast.models.Baseline needs scikit-learn: pip install scikit-learn") from exc
        if kind not in ("ridge", "logistic"):
            raise ValueError(f"kind must be 'ridge' or 'logistic', got {kind!r}")
        if features not in ("flat", "last"):
            raise ValueError(f"features must be 'flat' or 'last', got {features!r}")
        alpha = float(alpha)
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.kind, self.alpha, self.features = kind, alpha, features
        self.task = "regression" if kind == "ridge" else "classification"
        estimator = Ridge(alpha=alpha) if kind == "ridge" else LogisticRegression(C=1.0 / alpha, max_iter=1000)
        self.pipeline = make_pipeline(StandardScaler(), estimator)
        self._n_columns: int | None = None

    def __repr__(self) -> str:
        return f"Baseline(kind={self.kind!r}, alpha={self.alpha!r}, features={self.features!r})"

    def _design(self, X: Any) -> np.ndarray:
        """``X`` as a finite 2-D float array of one row per sample."""
        X = np.asarray(X, dtype=np.float64)
        if holds_labels(X):
            raise TypeError("X holds labels (a LabelFrame's column, or a view of one): labels are never features")
        if X.ndim == 3:
            X = X[:, -1, :] if self.features == "last" else X.reshape(len(X), -1)
        elif X.ndim != 2:
            raise ValueError(f"X must be (N, T, F) windows or (N, F) rows, got shape {X.shape}")
        bad = _first_bad_row(X)
        if bad is not None:
            raise ValueError(f"X has NaN or infinite values, first at row {bad}")
        return X

    def fit(self, X: Any, y: Any) -> Baseline:
        """Fit on ``X`` ``(N, T, F)`` or ``(N, F)`` and targets ``y`` ``(N,)`` (ridge: also ``(N, k)``)."""
        X = self._design(X)
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise ValueError(f"y must be numeric, got dtype {y.dtype}")
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        if y.dtype.kind == "f":
            bad = _first_bad_row(y)
            if bad is not None:
                raise ValueError(f"y has NaN or infinite values, first at row {bad}")
        if self.kind == "logistic":
            if y.ndim != 1:
                raise ValueError(f"logistic targets must be 1-D class labels, got shape {y.shape}")
            if y.dtype.kind == "f":
                if not np.array_equal(y, np.round(y)):
                    raise ValueError("logistic regression needs integer class labels, got non-integer float targets")
                y = y.astype(np.int64)
        elif y.ndim not in (1, 2):
            raise ValueError(f"ridge targets must be (N,) or (N, k), got shape {y.shape}")
        self.pipeline.fit(X, y)
        self._n_columns = X.shape[1]
        return self

    def _checked(self, X: Any) -> np.ndarray:
        if self._n_columns is None:
            raise RuntimeError("call fit() before predicting")
        X = self._design(X)
        if X.shape[1] != self._n_columns:
            raise ValueError(f"X gives {X.shape[1]} columns per sample, the model was fitted on {self._n_columns}")
        return X

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (logistic) or regressions (ridge), one per sample."""
        return self.pipeline.predict(self._checked(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(N, n_classes)``, columns in the order of ``classes_`` (logistic only)."""
        if self.kind != "logistic":
            raise AttributeError("predict_proba is available for kind='logistic' only")
        return self.pipeline.predict_proba(self._checked(X))

    @property
    def classes_(self) -> np.ndarray:
        """The class labels seen by ``fit`` (logistic only)."""
        if self.kind != "logistic" or self._n_columns is None:
            raise AttributeError("classes_ exists after fit() with kind='logistic'")
        return self.pipeline.classes_


# --------------------------------------------------------------------------- saved models

_FORMAT = "lobfast.predictor"
_FORMAT_VERSION = 1
_MODELS = {"DeepLOB": DeepLOB, "DeepLOBTCN": DeepLOBTCN, "HierarchicalTCN": HierarchicalTCN}


class Predictor:
    """A trained model with everything needed to use it on new data: the inputs it was
    trained on (the book's DeepLOB layout with ``levels`` levels, or the feature ``spec``),
    the window length, the fitted normaliser and the label description.  Made by
    :func:`load`; :meth:`predict` takes a book (and trades) and returns one prediction per
    book row, through the same feature, normalisation and window code as training.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        normalizer: Normalizer | None,
        features: list[str] | None,
        levels: int | None,
        window: int,
        labels: Any = None,
        meta: dict[str, Any] | None = None,
        target_scaler: TargetScaler | None = None,
    ) -> None:
        self.model, self.normalizer, self.features = model.eval(), normalizer, features
        self.target_scaler = target_scaler
        self.levels, self.window, self.labels, self.meta = levels, window, labels, dict(meta or {})

    def __repr__(self) -> str:
        inputs = f"features {self.features}" if self.features is not None else f"book of {self.levels} levels"
        norm = "no normaliser" if self.normalizer is None else f"{self.normalizer.method} normaliser"
        return f"Predictor({type(self.model).__name__}, {inputs}, window {self.window}, {norm})"

    def inputs(self, book: Any, trades: Any = None) -> Any:
        """The model's input rows for ``book``: the book itself (checked to have the levels the
        model was trained on) or its features (``spec`` computed, or a Frame given with exactly
        those columns)."""
        if self.features is None:
            if not isinstance(book, BookSnapshots):
                raise TypeError(f"this model reads the book: pass BookSnapshots, not {type(book).__name__}")
            if book.levels != self.levels:
                raise ValueError(f"this model was trained on {self.levels} book levels; the book has {book.levels}")
            return book
        if isinstance(book, Frame):
            if list(book.keys()) != self.features:
                raise ValueError(f"this model was trained on the columns {self.features}; got {list(book.keys())}")
            return book
        return _features(book, trades, spec=self.features)

    def predict(self, book: Any, trades: Any = None, *, batch_size: int = 1024, device: Any = None) -> np.ndarray:
        """One prediction per row of ``book`` (float64; ``(N,)`` for one output, else ``(N,
        outputs)``; logits for a class head), NaN where no full window of usable rows ends:
        the first ``window - 1`` rows, rows whose window holds an invalid book row or a
        feature still warming up."""
        X = self.inputs(book, trades)
        matrix, _, ts, valid = as_features(X)
        ok = np.isfinite(matrix).all(axis=1) if self.features is not None else np.ones(len(matrix), bool)
        if valid is not None:
            ok &= valid
        norm = self.normalizer
        if norm is not None and norm.method == "rolling_zscore":  # from earlier periods of this data only
            norm = Normalizer.from_state(norm.state()).fit(X, valid=ok)
        ds = WindowDataset(X, None, self.window, normalizer=norm, valid=ok)
        pred = _predict(self.model, ds, batch_size=batch_size, device=device)
        if self.target_scaler is not None:  # back to the target's own units
            pred = self.target_scaler.inverse(pred)
        shape = (len(matrix),) if pred.ndim == 1 else (len(matrix), pred.shape[1])
        out = np.full(shape, np.nan)
        out[ds.ends] = pred
        return out

    __call__ = predict


def save(
    path: Any,
    model: nn.Module,
    *,
    normalizer: Normalizer | None = None,
    features: Sequence[str] | None = None,
    labels: Any = None,
    window: int | None = None,
    meta: dict[str, Any] | None = None,
    target_scaler: TargetScaler | None = None,
) -> None:
    """Save ``model`` with what :func:`load` needs to predict new data (one file, written
    atomically; loading it runs no pickled code).

    Parameters
    ----------
    model : a :class:`DeepLOB`, :class:`DeepLOBTCN` or :class:`HierarchicalTCN`.
    normalizer : the fitted :class:`lobfast.Normalizer` the training windows went through.
    features : the feature spec the model was trained on (names for
        :func:`lobfast.features`), or None for the book's DeepLOB layout (levels = F / 4).
    labels : a description of the training target (numbers, strings, lists, dicts), kept
        for the record, e.g. ``{"label": "smooth_20", "horizon": 20}``.
    window : the window length T of training (default the model's own ``window``).
    meta : anything else to keep (numbers, strings, lists, dicts).
    target_scaler : the fitted :class:`lobfast.TargetScaler` of the training targets: the
        predictor's outputs are then turned back into the target's units.
    """
    name = type(model).__name__
    if _MODELS.get(name) is not type(model) or not hasattr(model, "config"):
        raise TypeError(f"save() takes a DeepLOB, DeepLOBTCN or HierarchicalTCN, not {name}")
    window = model.window if window is None else _positive(window, "window")
    if window is None:
        raise ValueError(f"{name} takes any window length: pass the window= it was trained with")
    if model.window is not None and window != model.window:
        raise ValueError(f"{name} was built for windows of {model.window} rows, not {window}")
    spec = None if features is None else [str(f) for f in features]
    if spec is not None and len(spec) != model.features:
        raise ValueError(f"the model reads {model.features} columns; features names {len(spec)}")
    if spec is None and model.features % 4:
        raise ValueError(f"the book layout has 4 columns a level; the model reads {model.features}: pass features=")
    if normalizer is not None and normalizer.fitted and normalizer.shift.shape[1] != model.features:
        raise ValueError(
            f"the normaliser was fitted on {normalizer.shift.shape[1]} columns; the model reads {model.features}"
        )
    bundle = {
        "format": _FORMAT,
        "version": _FORMAT_VERSION,
        "lobfast": _LOBFAST_VERSION,
        "torch": str(torch.__version__),
        "model": name,
        "config": model.config,
        "state": {k: v.detach().to("cpu") for k, v in model.state_dict().items()},
        "normalizer": None if normalizer is None else normalizer.state(),
        "features": spec,
        "levels": None if spec is not None else model.features // 4,
        "window": int(window),
        "labels": labels,
        "meta": dict(meta or {}),
        "target_scaler": None if target_scaler is None else target_scaler.state(),
    }
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(bundle, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load(path: Any, *, device: Any = "cpu") -> Predictor:
    """The :class:`Predictor` saved by :func:`save` at ``path``.  The file is read as
    tensors, dicts, lists, numbers and strings only: one holding other objects (whose
    unpickling could run code) is refused with ``ValueError``, as is a file that is not a
    saved lobfast model or comes from a newer format."""
    try:
        with warnings.catch_warnings():  # torch's note on a pickle protocol: the refusal below says more
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            bundle = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, EOFError) as e:
        raise ValueError(
            f"{path}: not a saved lobfast model, or it holds objects other than tensors and data ({e})"
        ) from None
    if not isinstance(bundle, dict) or bundle.get("format") != _FORMAT:
        raise ValueError(f"{path}: not a saved lobfast model")
    if bundle.get("version") != _FORMAT_VERSION:
        raise ValueError(
            f"{path}: saved in format version {bundle.get('version')}; this lobfast reads {_FORMAT_VERSION}"
        )
    cls = _MODELS.get(bundle["model"])
    if cls is None:
        raise ValueError(f"{path}: unknown model {bundle['model']!r}")
    model = cls(**bundle["config"])
    model.load_state_dict(bundle["state"])
    model.to(device)
    norm = None if bundle["normalizer"] is None else Normalizer.from_state(bundle["normalizer"])
    return Predictor(
        model,
        normalizer=norm,
        features=bundle["features"],
        levels=bundle["levels"],
        window=bundle["window"],
        labels=bundle["labels"],
        meta={**bundle["meta"], "lobfast": bundle["lobfast"], "torch": bundle["torch"]},
        target_scaler=None if bundle.get("target_scaler") is None else TargetScaler.from_state(bundle["target_scaler"]),
    )


_EXPORT_FORMATS = ("pt2", "onnx")

# Warnings torch raises while exporting models that it exports correctly (each model is
# checked against its eager self in the tests).  Any other warning is left alone.
_EXPORT_WARNINGS = (
    # nn.LSTM points its weight list at the traced parameters: the program holds them as parameters
    (UserWarning, r"The tensor attributes (\S+\._flat_weights\[\d+\](, )?)+ were assigned during export"),
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),  # inside torch.onnx
    (FutureWarning, r"_check_is_size will be removed"),  # in the loop torch.onnx turns an LSTM into
)


def export(model: nn.Module, path: Any, *, window: int | None = None, format: str = "pt2") -> None:
    """Save ``model`` (in eval mode) as a graph that runs without lobfast's Python code, with
    any batch size, for windows of ``window`` rows (default the model's own).

    - ``format="pt2"``: a ``torch.export`` program (``torch.export.load(path).module()``).
    - ``format="onnx"``: an ONNX model (one file; input ``x`` of shape ``(batch, window,
      features)``, output ``y``), from PyTorch's ``torch.export``-based ONNX exporter; needs
      ``pip install 'lobfast[onnx]'`` (onnx and onnxscript). Run it with onnxruntime.

    Both compute what the eager model does (checked in the tests on CPU, ONNX through
    onnxruntime, for all three architectures).  A model with a layer or an operation the
    exporter cannot translate raises :class:`lobfast.LobError` naming the model and, for
    ONNX, the operation; save it with :func:`save` instead.  The file is written atomically.
    """
    if format not in _EXPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(map(repr, _EXPORT_FORMATS))}, not {format!r}")
    if format == "onnx":
        for module in ("onnx", "onnxscript"):
            _require(module, "onnx")
    name = type(model).__name__
    window = getattr(model, "window", None) if window is None else _positive(window, "window")
    if window is None:
        raise ValueError(f"{name} takes any window length: pass window=")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    was = model.training
    model.eval()
    x = torch.zeros(2, window, model.features, device=next(model.parameters()).device)
    batch = torch.export.Dim("batch", min=1, max=1 << 30)
    try:
        with torch.no_grad(), _export_quietly():
            if format == "pt2":
                program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
            else:
                program = torch.onnx.export(
                    model, (x,), dynamo=True, verbose=False, dynamic_shapes=({0: batch},),
                    input_names=["x"], output_names=["y"], external_data=False,
                )  # fmt: skip
    except Exception as e:  # torch raises many types here; say which model and why
        target = " to ONNX" if format == "onnx" else ""
        raise lob_error(f"torch {torch.__version__} cannot export {name}{target}: {_export_failure(e)}") from e
    finally:
        model.train(was)
    try:
        if format == "pt2":
            torch.export.save(program, tmp)
        else:
            program.save(tmp, external_data=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _export_quietly():
    """Leave out the known harmless export warnings and torch.onnx's log lines."""
    log = logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for category, message in _EXPORT_WARNINGS:
                warnings.filterwarnings("ignore", message, category)
            yield
    finally:
        log.setLevel(level)


def _export_failure(e: BaseException) -> str:
    """Why an export failed: the operation without an ONNX translation when there is one,
    else the first line of the innermost error."""
    chain, seen = [], set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        chain.append(e)
        e = e.__cause__ or e.__context__
    text = "\n".join(re.sub(r"\x1b\[[0-9;]*m", "", str(c)) for c in chain)
    op = re.search(r"No ONNX function found for <OpOverload\(op='([^']+)'", text)
    if op:
        return f"the operation {op.group(1)} has no ONNX translation"
    node = re.search(r"target=torch\.ops\.([\w.]+?)(?:\.default)?\]", text)
    last = re.sub(r"\x1b\[[0-9;]*m", "", str(chain[-1])).strip()
    inner = last.splitlines()[0] if last else type(chain[-1]).__name__
    return f"the operation {node.group(1)} failed to translate: {inner}" if node else inner
