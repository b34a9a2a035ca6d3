"""Leakage checks between features, labels and splits (see :func:`leakage_report`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .frame import Frame, LabelFrame
from .split import Split
from .times import to_ns

__all__ = ["Crossing", "LeakageReport", "TruncationLeak", "TruncationReport", "leakage_report", "truncation_test"]


@dataclass(frozen=True)
class Crossing:
    """Rows of one label whose horizon crosses a split boundary (``ts < boundary <= known_at``)."""

    rows: int  # how many
    first_row: int  # the first one (row index)
    boundary: int  # the boundary that first row crosses, int64 ns


@dataclass(repr=False)
class LeakageReport:
    """What :func:`leakage_report` found; ``ok`` is True when it found nothing.

    Attributes
    ----------
    boundaries : sorted split boundaries, int64 ns.
    crossings : label column -> :class:`Crossing`, for labels with at least one crossing row.
    purge : bool per row, True where any label's horizon crosses a boundary: drop these
        rows from training and evaluation (or embargo them).
    unchecked : label columns without ``known_at`` (their horizons could not be checked).
    correlations : (feature, label) -> correlation over the rows where both are finite.
    suspicious : ``(feature, label, correlation)`` with ``|correlation| > threshold``,
        strongest first.
    threshold, method : the settings used.
    """

    boundaries: np.ndarray
    crossings: dict[str, Crossing]
    purge: np.ndarray
    unchecked: list[str]
    correlations: dict[tuple[str, str], float]
    suspicious: list[tuple[str, str, float]]
    threshold: float
    method: str
    _ts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    @property
    def ok(self) -> bool:
        """No label horizon crosses a boundary and no feature is suspiciously predictive."""
        return not self.crossings and not self.suspicious

    def __str__(self) -> str:
        def when(ns: int) -> str:
            return str(np.datetime64(int(ns), "ns"))

        problems = len(self.crossings) + len(self.suspicious)
        head = (
            f"LeakageReport: {'ok' if self.ok else f'{problems} problem(s)'} "
            f"({len(self.boundaries)} boundaries, {len(self.correlations)} feature/label pairs, "
            f"|{self.method}| > {self.threshold:g})"
        )
        lines = [head]
        if self.crossings:
            lines.append(
                f"  label horizons crossing a split boundary (ts < boundary <= known_at), "
                f"{int(self.purge.sum())} rows to purge:"
            )
            for name, c in self.crossings.items():
                lines.append(
                    f"    {name}: {c.rows} rows, first row {c.first_row} "
                    f"(ts {when(self._ts[c.first_row])} crosses {when(c.boundary)})"
                )
        if self.suspicious:
            lines.append("  suspiciously predictive features:")
            for feat, lab, r in self.suspicious:
                lines.append(f"    {feat} ~ {lab}: {self.method} {r:+.3f}")
        if self.unchecked:
            lines.append(f"  labels without known_at (horizons not checked): {', '.join(self.unchecked)}")
        return "\n".join(lines)

    __repr__ = __str__


def _rank(x: np.ndarray) -> np.ndarray:
    """Ranks from 0, ties sharing their average rank (as scipy.stats.rankdata, minus 1)."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    first = np.r_[True, xs[1:] != xs[:-1]]
    starts = np.flatnonzero(first)
    counts = np.diff(np.r_[starts, len(x)])
    ranks = np.empty(len(x))
    ranks[order] = (starts + (counts - 1) / 2)[np.cumsum(first) - 1]
    return ranks


def _corr(a: np.ndarray, b: np.ndarray, method: str) -> float:
    both = np.isfinite(a) & np.isfinite(b)
    a, b = a[both], b[both]
    if len(a) < 3:
        return float("nan")
    if method == "spearman":
        a, b = _rank(a), _rank(b)
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def _boundaries(splits: Any, unit: str | None, ts: np.ndarray) -> np.ndarray:
    """Sorted int64 ns boundaries; integers only with ``unit`` saying what they count."""
    if isinstance(splits, Split):
        if unit not in (None, "ns"):
            raise ValueError(f"a Split's boundaries are int64 ns, not unit={unit!r}")
        splits, unit = splits.boundaries, "ns"
    if isinstance(splits, (Mapping, str)) or not hasattr(splits, "__iter__"):
        raise TypeError(
            "splits must be a list of boundary times (e.g. ['2024-08-08T12:00', '2024-08-08T18:00']): "
            "a row's label leaks when its horizon runs across one"
        )
    if unit is not None and unit not in (*_UNITS, "rows"):
        raise ValueError(f"unit must be one of {', '.join(map(repr, [*_UNITS, 'rows']))} or None, not {unit!r}")
    items = list(splits)
    ints = [isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in items]
    if unit is None and any(ints):
        raise ValueError(
            f"splits holds an integer ({int(items[ints.index(True)])}), which could be a time or a row: say "
            "which with unit='ns' (or 'us', 'ms', 's': since the epoch, UTC) or unit='rows' (row indices "
            "of the labels), or give times as ISO strings, datetime or datetime64"
        )
    if unit is not None and not all(ints):
        raise TypeError(f"unit={unit!r} takes integer splits, got {items[ints.index(False)]!r}")
    if unit == "rows":
        rows = np.array(items, dtype=np.int64)
        outside = (rows < 0) | (rows >= len(ts))
        if outside.any():
            raise ValueError(f"split row {rows[outside][0]} is outside the labels' rows 0..{len(ts) - 1}")
        return np.sort(ts[rows])
    if unit is not None:
        return np.sort(np.array([int(t) * _UNITS[unit] for t in items], dtype=np.int64))
    return np.sort(np.array([to_ns(t) for t in items], dtype=np.int64))


def leakage_report(
    features: Frame | None,
    labels: LabelFrame,
    splits: Any,
    *,
    threshold: float = 0.5,
    method: str = "spearman",
    unit: str | None = None,
) -> LeakageReport:
    """Look for leakage between features, labels and train/validation/test splits.

    Two checks:

    1. **Horizons across splits.** For each label column, the rows whose horizon crosses a
       split boundary: ``ts < boundary <= known_at`` (the label is computed from data on
       the other side). Their union is ``report.purge``.
    2. **Suspiciously predictive features.** The correlation (Spearman by default, or
       Pearson; rows where either is NaN dropped) of every feature column with every float
       label column (forward returns, smoothed returns, classes); ``|r| > threshold`` is
       flagged. Honest features known at t stay well below 0.5 against future returns; one
       that exceeds it usually looks ahead. Over a few ticks book imbalance legitimately
       reaches 0.3-0.4 (Spearman ~0.37 with 1 s returns on BTCUSDT, 100 ms rows), so a lower
       threshold flags it too: a flag asks for a look at how the feature is computed, it is
       not proof.

    Parameters
    ----------
    features : FeatureFrame / Frame aligned row by row with ``labels`` (same ``ts``), or
        None to check horizons only.
    labels : LabelFrame (e.g. from :mod:`lobfast.labels`, :func:`lobfast.labels.combine`
        for several) with ``known_at``.
    splits : split boundaries, e.g. the start of validation and of test: a list of times
        (ISO strings, datetime, datetime64, pandas Timestamps), or a :class:`lobfast.split.Split`
        (its ``boundaries``). Integers are refused unless ``unit`` says what they are.
    unit : what integer ``splits`` are: ``"ns"``, ``"us"``, ``"ms"``, ``"s"`` since the epoch
        (UTC), or ``"rows"``: row indices of ``labels``, each the first row of the part after
        the boundary (its ``ts`` is the boundary time).
    threshold : flag correlations above this in absolute value (default 0.5).
    method : ``"spearman"`` or ``"pearson"``.

    Returns
    -------
    LeakageReport: printable; data as attributes; ``.ok``.

    Examples
    --------
    >>> import numpy as np, lobfast
    >>> ts = np.arange(100) * 1_000_000_000
    >>> mid = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 1e-3, 100)))
    >>> lab = lobfast.labels.forward_return((mid, ts), "5s")
    >>> cheat = lobfast.FeatureFrame(ts, cheat=lab["ret_5s"].copy())  # the column itself is refused
    >>> r = lobfast.leakage_report(cheat, lab, ["1970-01-01T00:00:50"])  # or [50], unit="s"
    >>> r.ok, r.crossings["ret_5s"].rows, r.suspicious[0][:2]
    (False, 5, ('cheat', 'ret_5s'))
    """
    if not isinstance(labels, LabelFrame):
        raise TypeError(f"labels must be a LabelFrame, not {type(labels).__name__}")
    if method not in ("spearman", "pearson"):
        raise ValueError(f"method must be 'spearman' or 'pearson', not {method!r}")
    if not (np.isfinite(threshold) and 0 <= threshold < 1):
        raise ValueError(f"threshold must be in [0, 1), not {threshold!r}")
    if features is not None:
        if isinstance(features, LabelFrame) or not isinstance(features, Frame):
            raise TypeError(f"features must be a FeatureFrame or Frame, not {type(features).__name__}")
        if len(features) != len(labels):
            raise ValueError(f"features have {len(features)} rows, labels {len(labels)}: align them row by row")
        diff = np.flatnonzero(features.ts != labels.ts)
        if len(diff):
            i = int(diff[0])
            raise ValueError(
                f"features and labels are not aligned: ts differs first at row {i} "
                f"({features.ts[i]} vs {labels.ts[i]}); compute both on the same rows"
            )
    bounds = _boundaries(splits, unit, labels.ts)
    ts = labels.ts

    # 1. horizons: the first boundary after each row's ts, reached by its known_at?
    crossings, unchecked = {}, []
    purge = np.zeros(len(ts), dtype=bool)
    nxt = np.searchsorted(bounds, ts, side="right")
    has = nxt < len(bounds)
    b_next = bounds[np.minimum(nxt, len(bounds) - 1)] if len(bounds) else np.zeros(len(ts), np.int64)
    for name in labels:
        known = labels.known_at.get(name)
        if known is None:
            unchecked.append(name)
            continue
        cross = has & (known >= 0) & (known >= b_next)
        rows = np.flatnonzero(cross)
        if len(rows):
            purge |= cross
            crossings[name] = Crossing(int(len(rows)), int(rows[0]), int(b_next[rows[0]]))

    # 2. correlations of features with float labels
    corrs: dict[tuple[str, str], float] = {}
    if features is not None:
        targets = [n for n, a in labels.items() if a.dtype.kind == "f"]
        for f, x in features.items():
            xf = x.astype(np.float64, copy=False)
            for lab in targets:
                corrs[(f, lab)] = _corr(xf, labels[lab], method)
    suspicious = sorted(
        ((f, lab, r) for (f, lab), r in corrs.items() if abs(r) > threshold),
        key=lambda t: -abs(t[2]),
    )
    return LeakageReport(bounds, crossings, purge, unchecked, corrs, suspicious, float(threshold), method, ts)


# ------------------------------------------------------------------------------ truncation


@dataclass(frozen=True)
class TruncationLeak:
    """A column whose value at some checked rows changes when the data after them is removed."""

    rows: int  # checked rows where it changed
    first_row: int  # the first of them (row index)
    full: float  # its value there from all the data ...
    truncated: float  # ... and from the data cut just after it


@dataclass(repr=False)
class TruncationReport:
    """What :func:`truncation_test` found; ``ok`` is True when no column looked ahead.

    Attributes
    ----------
    rows : the rows checked (sorted).
    columns : the columns compared.
    leaks : column -> :class:`TruncationLeak`, for the columns that changed.
    """

    rows: np.ndarray
    columns: list[str]
    leaks: dict[str, TruncationLeak]

    @property
    def ok(self) -> bool:
        return not self.leaks

    def __str__(self) -> str:
        head = (
            f"TruncationReport: {'ok' if self.ok else f'{len(self.leaks)} column(s) use later data'} "
            f"({len(self.columns)} columns at {len(self.rows)} rows)"
        )
        lines = [head]
        for name, leak in self.leaks.items():
            lines.append(
                f"  {name}: differs at {leak.rows} of {len(self.rows)} rows, first row {leak.first_row} "
                f"({leak.full!r} from all the data, {leak.truncated!r} from the data up to that row)"
            )
        return "\n".join(lines)

    __repr__ = __str__


def _cut(x: Any, k: int, t: int | None) -> Any:
    """``x`` up to row ``k - 1`` (the data defining the rows), or up to time ``t`` inclusive
    (a companion table such as trades: what is known at the last row)."""
    if t is not None:
        ts = np.asarray(x["ts"] if isinstance(x, Mapping) else x.ts)
        k = int(np.searchsorted(ts, t, side="right"))
    if isinstance(x, Frame):
        return x.rows[:k]
    if isinstance(x, Mapping):
        return {name: np.asarray(a)[:k] for name, a in x.items()}
    return x[:k]


def _outputs(out: Any, what: str) -> dict[str, np.ndarray]:
    if isinstance(out, Frame):
        return {name: np.asarray(a) for name, a in out.items()}
    if isinstance(out, Mapping):
        return {str(name): np.asarray(a) for name, a in out.items()}
    if isinstance(out, np.ndarray):
        return {"value": out}
    raise TypeError(f"{what} must return a Frame, a mapping of arrays or an ndarray, not {type(out).__name__}")


def truncation_test(
    fn: Any,
    data: Any,
    rows: Any = None,
    *,
    n: int = 20,
    seed: int = 0,
    rtol: float = 0.0,
    atol: float = 0.0,
) -> TruncationReport:
    """Does ``fn`` look ahead?  Recompute it on the data cut just after each of some rows and
    compare with the computation on all the data at those rows: a value that changes used
    data from after its row, which a model would not have had.  No threshold on a
    correlation is involved, so an off-by-one (a feature holding the next row's change) is
    caught however weakly it correlates with the target.

    Parameters
    ----------
    fn : a callable from ``data`` to a :class:`~lobfast.Frame` (or a mapping of arrays, or an
        ndarray) with one row per row of the data, e.g. ``lambda b: lobfast.features(b)``.
    data : what ``fn`` takes: a container with rows and ``ts`` (BookSnapshots, Quotes, a
        Frame, a mapping of arrays), or a tuple of them, passed to ``fn`` as separate
        arguments; the first defines the rows and the others (e.g. trades) are cut at the
        time of the last row kept (``ts <=`` it).
    rows : the rows to check; default ``n`` rows drawn with ``seed`` (the last row, which
        sees all the data either way, is never drawn).
    rtol, atol : tolerance of the comparison (default exact: a causal computation on a prefix
        of the data repeats the same arithmetic).  NaN equals NaN.

    Returns
    -------
    :class:`TruncationReport`.  Each checked row costs one call of ``fn`` on the rows up to it.

    Examples
    --------
    >>> import numpy as np, lobfast
    >>> from lobfast.leakage import truncation_test
    >>> x = {"ts": np.arange(50), "v": np.cumsum(np.ones(50))}
    >>> ahead = lambda d: {"next_change": np.r_[np.diff(d["v"]), np.nan]}
    >>> truncation_test(ahead, x, rows=[10, 20]).leaks["next_change"].first_row
    10
    """
    parts = tuple(data) if isinstance(data, tuple) else (data,)
    main = parts[0]
    total = len(main["ts"] if isinstance(main, Mapping) else main)
    if rows is None:
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, not {n!r}")
        pool = max(total - 1, 0)
        rows = np.random.default_rng(seed).choice(pool, size=min(int(n), pool), replace=False) if pool else []
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    if len(rows) and (rows[0] < 0 or rows[-1] >= total):
        raise ValueError(f"rows must lie in 0..{total - 1}; got {int(rows[0])}..{int(rows[-1])}")
    full = _outputs(fn(*parts), "fn")
    for name, a in full.items():
        if len(a) != total:
            raise ValueError(f"fn must return one row per data row: column {name!r} has {len(a)}, the data {total}")
    ts_main = np.asarray(main["ts"] if isinstance(main, Mapping) else main.ts)
    diff: dict[str, list[tuple[int, float, float]]] = {name: [] for name in full}
    for r in rows.tolist():
        t = int(ts_main[r])
        cut = (_cut(main, r + 1, None), *(_cut(p, 0, t) for p in parts[1:]))
        part = _outputs(fn(*cut), "fn")
        for name, a in full.items():
            if name not in part or len(part[name]) != r + 1:
                raise ValueError(f"fn must return the same columns with one row per data row (column {name!r})")
            want, got = np.asarray(a[r], np.float64), np.asarray(part[name][r], np.float64)
            same = np.isclose(want, got, rtol=rtol, atol=atol, equal_nan=True)
            if not np.all(same):
                k = int(np.flatnonzero(~np.ravel(same))[0])
                diff[name].append((r, float(np.ravel(want)[k]), float(np.ravel(got)[k])))
    leaks = {
        name: TruncationLeak(rows=len(d), first_row=d[0][0], full=d[0][1], truncated=d[0][2])
        for name, d in diff.items()
        if d
    }
    return TruncationReport(rows=rows, columns=list(full), leaks=leaks)
