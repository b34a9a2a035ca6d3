"""Honest evaluation of predictions: metrics against the training target and the raw return.

A model trained on a smoothed or EMA label (:func:`lobfast.labels.smoothed`,
:func:`lobfast.labels.ema_return`) can score well against that label and still carry no
tradable information: the label mixes returns that are partly known when the prediction is
made. :func:`evaluate_predictions` therefore always reports two sets of metrics, one against
the target the model was trained on (``"target"``) and one against the raw, unsmoothed
forward return over the same horizon (``"raw"``, from :func:`lobfast.labels.forward_return`).
The raw comparison is the honest one; a large gap between the two is a warning sign.

Everything is NumPy. Rows where the prediction or the value compared with is NaN are
dropped, per comparison, and ``n`` says how many were used. Tables need pandas and figures
need matplotlib, both imported only when called; the figures are built without pyplot
(no global state, no display needed) and returned as :class:`matplotlib.figure.Figure`.

Class labels
------------
Classification metrics take class indices ``0 .. C-1``, as a classifier head (e.g. a
cross-entropy loss) needs them. :func:`lobfast.labels.classify` returns -1 (down),
0 (flat) and +1 (up); add 1 to get the class indices used here:
**0 = down, 1 = flat, 2 = up** (with two classes, 0 = down and 1 = up).

Examples
--------
>>> import numpy as np
>>> from lobfast import evaluate
>>> pred = np.array([0.1, -0.2, 0.3, np.nan, 0.0])
>>> raw = np.array([0.2, -0.1, 0.1, 0.5, -0.3])
>>> m = evaluate.regression_metrics(pred, raw)
>>> m["n"], round(m["pearson"], 4), round(m["mae"], 4)
(4, 0.5416, 0.175)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import LobWarning, _require
from .figures import figure, save

__all__ = [
    "classification_metrics",
    "evaluate_predictions",
    "plot_history",
    "plot_per_symbol",
    "plot_predictions",
    "regression_metrics",
    "summary_table",
]

_DIRECTION_NAMES = {-1: "down", 0: "flat", 1: "up"}


# ------------------------------------------------------------------------------ helpers
def _pair(pred: Any, target: Any, what: str = "target") -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if p.ndim != 1 or t.ndim != 1 or p.shape != t.shape:
        raise ValueError(f"pred and {what} must be 1-D arrays of the same length, got shapes {p.shape} and {t.shape}")
    return p, t


def _rank(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, tied values sharing their average rank."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    first = np.r_[True, xs[1:] != xs[:-1]] if len(xs) else np.zeros(0, bool)
    starts = np.flatnonzero(first)
    counts = np.diff(np.r_[starts, len(x)])
    ranks = np.empty(len(x))
    ranks[order] = (starts + 1 + (counts - 1) / 2)[np.cumsum(first) - 1]
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2:
        return float("nan")
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt(np.dot(a, a) * np.dot(b, b))
    if not den > 0:
        return float("nan")
    return float(np.clip(np.dot(a, b) / den, -1.0, 1.0))


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else float("nan")


# ------------------------------------------------------------------------------ regression
def regression_metrics(pred: Any, target: Any) -> dict[str, float]:
    """Pearson and Spearman correlation, MAE, RMSE and R² of ``pred`` against ``target``.

    Parameters
    ----------
    pred, target : 1-D arrays of the same length. Rows where either is NaN (or infinite)
        are dropped.

    Returns
    -------
    dict with ``pearson``, ``spearman`` (the rank IC; tied values share their average rank),
    ``mae``, ``rmse``, ``r2`` (``1 - SS_res / SS_tot``, about the mean of the target) and
    ``n`` (rows used). With fewer than 2 rows every metric is NaN. A correlation is NaN when
    either side is constant, and ``r2`` when the target is constant.

    Examples
    --------
    >>> m = regression_metrics([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0])
    >>> m["spearman"], m["mae"], m["r2"]
    (0.8, 0.5, 0.6)
    """
    p, t = _pair(pred, target)
    ok = np.isfinite(p) & np.isfinite(t)
    p, t = p[ok], t[ok]
    n = len(p)
    nan = float("nan")
    if n < 2:
        return {"pearson": nan, "spearman": nan, "mae": nan, "rmse": nan, "r2": nan, "n": n}
    err = p - t
    ss_res = float(np.dot(err, err))
    dev = t - t.mean()
    ss_tot = float(np.dot(dev, dev))
    return {
        "pearson": _pearson(p, t),
        "spearman": _pearson(_rank(p), _rank(t)),
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt(ss_res / n)),
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else nan,
        "n": n,
    }


# ------------------------------------------------------------------------------ classification
def _pred_classes(pred: Any) -> np.ndarray:
    """Predicted classes as float64 (NaN where unknown): class indices, or scores (N, C) -> argmax."""
    p = np.asarray(pred, dtype=np.float64)
    if p.ndim == 2:
        if p.shape[1] == 0:
            raise ValueError(f"pred has scores for no class: shape {p.shape}")
        bad = np.isnan(p).any(axis=1)
        out = np.argmax(np.where(np.isnan(p), -np.inf, p), axis=1).astype(np.float64)
        out[bad] = np.nan
        return out
    if p.ndim != 1:
        raise ValueError(f"pred must be classes (N,) or class scores (N, C), got shape {p.shape}")
    return p


def _check_classes(v: np.ndarray, name: str) -> None:
    if name == "target":
        what = "a class head needs class targets (for returns use regression_metrics, or lobfast.labels.classify + 1)"
    else:
        what = "pass predicted classes, or class scores of shape (N, C)"
    if not np.isfinite(v).all() or np.any(v != np.round(v)):
        bad = float(v[~np.isfinite(v) | (v != np.round(v))][0])
        raise ValueError(f"{name} must be class indices 0 .. C-1; found {bad:g}: {what}")
    if len(v) and v.min() < 0:
        raise ValueError(
            f"{name} must be class indices 0 .. C-1, found {v.min():g}; lobfast.labels.classify "
            "returns -1 / 0 / +1: add 1 to get 0 = down, 1 = flat, 2 = up"
        )


def _classes(pred: Any, target: Any, n_classes: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    raw = np.asarray(pred)
    p = _pred_classes(pred)
    t = np.asarray(target, dtype=np.float64)
    if t.ndim != 1 or p.shape != t.shape:
        raise ValueError(
            f"pred and target must have the same number of rows (pred (N,) or (N, C), target (N,)), "
            f"got shapes {raw.shape} and {t.shape}"
        )
    ok = ~np.isnan(p) & ~np.isnan(t)
    p, t = p[ok], t[ok]
    _check_classes(t, "target")
    _check_classes(p, "pred")
    p, t = p.astype(np.int64), t.astype(np.int64)
    seen = int(max(p.max(initial=-1), t.max(initial=-1))) + 1
    if n_classes is None:
        n_classes = max(seen, raw.shape[1] if raw.ndim == 2 else 0)
    else:
        if isinstance(n_classes, (bool, np.bool_)) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
            raise ValueError(f"n_classes must be a positive int, not {n_classes!r}")
        if seen > n_classes:
            raise ValueError(f"n_classes={n_classes} but class {seen - 1} occurs in pred or target")
        if raw.ndim == 2 and raw.shape[1] != n_classes:
            raise ValueError(f"pred has scores for {raw.shape[1]} classes, n_classes is {n_classes}")
    return p, t, int(n_classes)


def classification_metrics(pred: Any, target: Any, n_classes: int | None = None) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro F1, Matthews correlation and the confusion matrix.

    Parameters
    ----------
    pred : predicted class indices (N,), or class scores / probabilities (N, C) (the
        predicted class is the argmax of each row).
    target : true class indices (N,): integers ``0 .. C-1`` (floats are accepted when they
        are whole numbers). Class labels in lobfast are 0 = down, 1 = flat, 2 = up, that is
        :func:`lobfast.labels.classify` plus 1; negative or fractional values raise.
    n_classes : C; default: the largest class seen + 1 (or the width of ``pred``'s scores).

    Rows where the prediction or the target is NaN are dropped.

    Returns
    -------
    dict with ``accuracy``; ``balanced_accuracy`` (mean recall over the classes that occur in
    the target); ``macro_f1`` (unweighted mean F1 over the classes that occur in the target
    or the prediction); ``mcc`` (multiclass Matthews correlation, Gorodkin's R_K; 0 when
    undefined); ``confusion`` (C x C int64, rows = true class, columns = predicted class);
    ``n`` (rows used). With no rows the metrics are NaN.

    Examples
    --------
    >>> m = classification_metrics([0, 2, 1, 2], [0, 2, 2, 2])
    >>> m["accuracy"], round(m["macro_f1"], 4), m["confusion"].tolist()
    (0.75, 0.6, [[1, 0, 0], [0, 0, 0], [0, 1, 2]])
    """
    p, t, c = _classes(pred, target, n_classes)
    n = len(t)
    conf = np.bincount(t * c + p, minlength=c * c).reshape(c, c).astype(np.int64)
    nan = float("nan")
    if n == 0:
        return {"accuracy": nan, "balanced_accuracy": nan, "macro_f1": nan, "mcc": nan, "confusion": conf, "n": 0}
    cf = conf.astype(np.float64)
    tp = np.diag(cf)
    true_n, pred_n = cf.sum(axis=1), cf.sum(axis=0)
    in_target = true_n > 0
    present = in_target | (pred_n > 0)
    f1 = 2 * tp[present] / (true_n[present] + pred_n[present])
    cov_tp = tp.sum() * n - np.dot(true_n, pred_n)
    cov_pp = float(n) * n - np.dot(pred_n, pred_n)
    cov_tt = float(n) * n - np.dot(true_n, true_n)
    mcc = cov_tp / np.sqrt(cov_tt * cov_pp) if cov_tt * cov_pp > 0 else 0.0
    return {
        "accuracy": float(tp.sum() / n),
        "balanced_accuracy": float((tp[in_target] / true_n[in_target]).mean()),
        "macro_f1": float(f1.mean()),
        "mcc": float(mcc),
        "confusion": conf,
        "n": n,
    }


# ------------------------------------------------------------------------------ both
def _directions(classes: np.ndarray, n_classes: int) -> np.ndarray:
    if n_classes == 3:
        return classes - 1.0
    if n_classes == 2:
        return 2.0 * classes - 1.0
    raise ValueError(
        f"the raw-return comparison maps classes to directions and needs 2 classes (0 = down, 1 = up) "
        f"or 3 (0 = down, 1 = flat, 2 = up), not {n_classes}"
    )


def _hits(direction: np.ndarray, raw: np.ndarray) -> tuple[float, int]:
    called = (direction != 0) & (raw != 0)
    k = int(called.sum())
    return (float(np.mean(np.sign(direction[called]) == np.sign(raw[called]))) if k else float("nan")), k


def evaluate_predictions(
    pred: Any,
    target: Any,
    raw_return: Any = None,
    task: str = "regression",
    *,
    n_classes: int | None = None,
    inflation_margin: float = 0.1,
) -> dict[str, dict[str, Any]]:
    """Metrics against the training target and, when given, against the raw forward return.

    Train on a smoothed or EMA label if it helps, but judge the model on ``raw_return``,
    the unsmoothed forward return over the same horizon
    (:func:`lobfast.labels.forward_return`): that is what a position would earn. Smoothed
    and EMA labels partly overlap information known at prediction time, so metrics against
    them overstate what the model knows.

    Parameters
    ----------
    pred : predictions, aligned row by row with ``target``. Regression: values (N,).
        Classification: class indices (N,) or class scores (N, C).
    target : the label the model was trained on (N,); class indices for classification
        (0 = down, 1 = flat, 2 = up; see :func:`classification_metrics`).
    raw_return : the raw forward return (N,), or None (then there is no ``"raw"`` entry).
    task : ``"regression"`` or ``"classification"``.
    n_classes : classification only: C (2 or 3 for the raw comparison); default inferred.
    inflation_margin : regression with ``raw_return``: a :class:`lobfast.LobWarning` says so
        when the rank IC against the target exceeds the rank IC against the raw return by
        more than this (default 0.1) plus ``2 / sqrt(n)`` (the noise of a rank IC on n rows):
        the target (smoothed, EMA, overlapping) makes the model
        look better than what a position would earn.  ``raw["target_minus_raw_ic"]`` holds
        the difference.

    Returns
    -------
    ``{"target": ..., "raw": ...}``:

    - ``"target"``: :func:`regression_metrics` or :func:`classification_metrics` against
      ``target``.
    - ``"raw"`` (only when ``raw_return`` is given). Regression: :func:`regression_metrics`
      of ``pred`` against ``raw_return``, plus ``directional_accuracy`` (how often
      ``sign(pred) == sign(raw_return)`` over the rows where both are nonzero) and
      ``n_directional`` (those rows). Classification: each predicted class becomes a
      direction (-1 down, 0 flat, +1 up) and ``directional_accuracy`` is how often it has the
      sign of the raw return over the rows with an up or down call and a nonzero return
      (``n_directional`` rows); ``coverage`` is the fraction of rows with an up or down call;
      ``mean_return_down`` / ``_flat`` / ``_up`` are the mean raw return per predicted class
      (NaN for a class never predicted), ``up_minus_down`` their difference; ``pearson`` and
      ``spearman`` (rank IC) correlate the direction with the raw return; ``n`` rows used.

    Examples
    --------
    >>> classes = np.array([2, 0, 1, 2])  # up, down, flat, up
    >>> target = np.array([2, 0, 2, 1])
    >>> raw = np.array([0.003, -0.001, 0.002, -0.002])
    >>> r = evaluate_predictions(classes, target, raw, task="classification", n_classes=3)
    >>> r["target"]["accuracy"], r["raw"]["directional_accuracy"], r["raw"]["mean_return_up"]
    (0.5, 0.6666666666666666, 0.0005)
    """
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', not {task!r}")
    out: dict[str, dict[str, Any]] = {}
    if task == "regression":
        out["target"] = regression_metrics(pred, target)
        if raw_return is not None:
            p, r = _pair(pred, raw_return, "raw_return")
            raw = regression_metrics(p, r)
            ok = np.isfinite(p) & np.isfinite(r)
            raw["directional_accuracy"], raw["n_directional"] = _hits(p[ok], r[ok])
            gap = out["target"]["spearman"] - raw["spearman"]
            raw["target_minus_raw_ic"] = gap
            noise = 2.0 / np.sqrt(max(raw["n"], 1))  # about two standard errors of a rank IC
            if gap > inflation_margin + noise:
                warnings.warn(
                    f"the rank IC against the target ({out['target']['spearman']:.3f}) exceeds the rank IC against "
                    f"the raw return ({raw['spearman']:.3f}) by {gap:.3f}, more than {inflation_margin:g} + "
                    f"{noise:.3f} (noise on {raw['n']} rows): the target "
                    "(smoothed, EMA or overlapping) inflates the metric; judge the model on the raw return",
                    LobWarning,
                    stacklevel=2,
                )
            out["raw"] = raw
        return out

    if raw_return is not None and n_classes is None and np.ndim(pred) == 1:
        # which class means "up" depends on how many there are; guessing it from the classes
        # that happen to occur would silently turn "flat" into "up"
        raise ValueError("pass n_classes (3: down/flat/up, 2: down/up) to compare class predictions with raw returns")
    metrics = classification_metrics(pred, target, n_classes)
    out["target"] = metrics
    if raw_return is not None:
        cls = _pred_classes(pred)
        r = np.asarray(raw_return, dtype=np.float64)
        if r.shape != cls.shape:
            raise ValueError(
                f"pred and raw_return must have the same number of rows, got shapes "
                f"{np.shape(pred)} and {np.shape(raw_return)}"
            )
        direction = _directions(cls, metrics["confusion"].shape[0])
        ok = np.isfinite(direction) & np.isfinite(r)
        d, r = direction[ok], r[ok]
        raw = {}
        raw["directional_accuracy"], raw["n_directional"] = _hits(d, r)
        raw["coverage"] = _mean((d != 0).astype(np.float64))
        for k, name in _DIRECTION_NAMES.items():
            raw[f"mean_return_{name}"] = _mean(r[d == k])
        raw["up_minus_down"] = raw["mean_return_up"] - raw["mean_return_down"]
        raw["pearson"] = _pearson(d, r)
        raw["spearman"] = _pearson(_rank(d), _rank(r))
        raw["n"] = len(d)
        out["raw"] = raw
    return out


# ------------------------------------------------------------------------------ tables
def _is_count(name: str) -> bool:
    return name == "n" or name.startswith("n_")


def _flatten(d: Mapping[str, Any], prefix: str, out: dict[str, float], counts: set[str]) -> None:
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            _flatten(v, f"{name}_", out, counts)
        elif isinstance(v, (bool, np.bool_, int, float, np.integer, np.floating)):
            out[name] = float(v) if isinstance(v, (bool, np.bool_)) else v
            if _is_count(str(k)):
                counts.add(name)
        # arrays (the confusion matrix) and anything else non-scalar are left out


def summary_table(results: Mapping[str, Mapping[str, Any]]):
    """One row per symbol with the metrics flattened into columns, plus a row ``"ALL"``.

    Parameters
    ----------
    results : ``{symbol: evaluate_predictions(...)}`` (or any dict of metric dicts, nested
        or flat). Nested keys are joined with ``_``: ``raw_pearson``, ``target_mae``, ...
        Non-scalar entries (the confusion matrix) are left out.

    Returns
    -------
    pandas.DataFrame indexed by ``symbol``, sorted, then the row ``"ALL"``: the unweighted
    mean over the symbols of each metric (NaN ignored), except the row counts (``n``,
    ``n_...`` columns), which are summed.

    Examples
    --------
    >>> t = summary_table({"ETHUSDT": {"raw": {"pearson": 0.1, "n": 10}},
    ...                    "BTCUSDT": {"raw": {"pearson": 0.3, "n": 20}}})
    >>> t.index.tolist(), t["raw_pearson"].round(3).tolist(), t["raw_n"].tolist()
    (['BTCUSDT', 'ETHUSDT', 'ALL'], [0.3, 0.1, 0.2], [20.0, 10.0, 30.0])
    """
    pd = _require("pandas", "pandas")
    if not isinstance(results, Mapping) or not results:
        raise ValueError("results must be a non-empty dict {symbol: metrics}")
    if "ALL" in results:
        raise ValueError("'ALL' is the name of the mean row; rename that symbol")
    rows, counts = {}, set()
    for sym in sorted(results, key=str):
        if not isinstance(results[sym], Mapping):
            raise TypeError(f"results[{sym!r}] must be a dict of metrics, not {type(results[sym]).__name__}")
        flat: dict[str, float] = {}
        _flatten(results[sym], "", flat, counts)
        rows[str(sym)] = flat
    table = pd.DataFrame.from_dict(rows, orient="index").astype(np.float64)
    table.index.name = "symbol"
    total = table.mean(axis=0, skipna=True)
    for col in counts:
        total[col] = table[col].sum(skipna=True)
    table.loc["ALL"] = total
    return table


# ------------------------------------------------------------------------------ figures
def plot_history(history: Mapping[str, Any], path: Any = None):
    """Training curves: ``train_loss`` and ``val_loss`` per epoch, ``lr`` on a second axis.

    Parameters
    ----------
    history : dict of per-epoch lists: ``"train_loss"`` and/or ``"val_loss"``, optionally
        ``"lr"`` (drawn on a log scale when all positive). The best validation epoch is marked.
    path : save the figure there too (format from the suffix, e.g. ``.png``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    curves = {k: np.asarray(history[k], dtype=np.float64) for k in ("train_loss", "val_loss") if k in history}
    if not curves:
        raise ValueError(f"history needs 'train_loss' and/or 'val_loss', has {sorted(history)}")
    fig = figure(figsize=(7, 4))
    ax = fig.subplots()
    for name, y in curves.items():
        ax.plot(np.arange(1, len(y) + 1), y, marker="o", ms=3, label=name.replace("_", " "))
    val = curves.get("val_loss")
    if val is not None and np.isfinite(val).any():
        best = int(np.nanargmin(val))
        ax.plot([best + 1], [val[best]], "k*", ms=11, label=f"best val (epoch {best + 1})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if "lr" in history:
        lr = np.asarray(history["lr"], dtype=np.float64)
        ax2 = ax.twinx()
        ax2.plot(np.arange(1, len(lr) + 1), lr, color="tab:gray", ls="--", label="learning rate")
        if len(lr) and (lr > 0).all():
            ax2.set_yscale("log")
        ax2.set_ylabel("learning rate")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="upper right")
    ax.set_title("training history")
    save(fig, path)
    return fig


def plot_predictions(pred: Any, realised: Any, path: Any = None, *, title: str = ""):
    """Predicted against realised values with a least-squares line; IC in the title.

    A scatter plot up to 5000 points, a hexbin density (log colour scale) above. Rows where
    either is NaN are dropped. The title gives the Spearman IC, the Pearson correlation and
    the number of rows.

    Returns
    -------
    matplotlib.figure.Figure
    """
    p, r = _pair(pred, realised, "realised")
    ok = np.isfinite(p) & np.isfinite(r)
    p, r = p[ok], r[ok]
    m = regression_metrics(p, r)
    fig = figure(figsize=(5.5, 5))
    ax = fig.subplots()
    if len(p) > 5000:
        hb = ax.hexbin(p, r, gridsize=60, bins="log", mincnt=1, cmap="viridis")
        fig.colorbar(hb, ax=ax, label="rows")
    else:
        ax.scatter(p, r, s=6, alpha=0.5)
    if len(p) >= 2 and np.ptp(p) > 0:
        slope, icpt = np.polyfit(p, r, 1)
        xs = np.array([p.min(), p.max()])
        ax.plot(xs, icpt + slope * xs, color="tab:red", lw=1.5, label=f"fit: slope {slope:.3g}")
        ax.legend(loc="upper left")
    ax.axhline(0, color="k", lw=0.5)
    ax.axvline(0, color="k", lw=0.5)
    ax.set_xlabel("predicted")
    ax.set_ylabel("realised")
    head = f"{title}: " if title else ""
    ax.set_title(f"{head}IC {m['spearman']:.3f}, Pearson {m['pearson']:.3f}, n={m['n']}")
    save(fig, path)
    return fig


def plot_per_symbol(table: Any, metric: str, path: Any = None):
    """Bars of one metric per symbol, from :func:`summary_table` (or a ``{symbol: value}`` dict).

    The ``"ALL"`` row, when present, is drawn as a dashed horizontal line (the mean).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(table, Mapping):
        values = {str(k): float(v) for k, v in table.items()}
    else:
        if metric not in table.columns:
            raise KeyError(f"no column {metric!r}; columns are {list(table.columns)}")
        values = {str(k): float(v) for k, v in table[metric].items()}
    mean = values.pop("ALL", None)
    names = list(values)
    fig = figure(figsize=(max(4.0, 0.6 * len(names) + 2), 4))
    ax = fig.subplots()
    y = np.array([values[k] for k in names], dtype=np.float64)
    colors = ["tab:blue" if not v < 0 else "tab:red" for v in y]
    ax.bar(np.arange(len(names)), y, color=colors)
    ax.set_xticks(np.arange(len(names)), names, rotation=45 if len(names) > 6 else 0, ha="right")
    if mean is not None and np.isfinite(mean):
        ax.axhline(mean, color="k", ls="--", lw=1, label=f"mean {mean:.4g}")
        ax.legend(loc="best")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per symbol")
    save(fig, path)
    return fig
