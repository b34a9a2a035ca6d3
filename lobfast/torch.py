"""PyTorch data path: windows gathered a whole batch at a time in C, never copied one by one.

:class:`WindowDataset` keeps the feature matrix once, plus the int64 ends of the usable
windows (see :mod:`lobfast.windows`). A batch is one call into C that normalises and
copies ``B x T x F`` values into a fresh (optionally pinned) tensor with the GIL
released; shuffling permutes the ends, never the data. Use :func:`loader`, or a
``torch.utils.data.DataLoader(ds, batch_size=..., collate_fn=lobfast.torch.collate_batch)``
(it then calls ``__getitems__`` once per batch).

Examples
--------
>>> import numpy as np, lobfast
>>> from lobfast.torch import WindowDataset, loader
>>> X = np.random.default_rng(0).normal(size=(1000, 40)).astype(np.float32)
>>> y = np.random.default_rng(1).normal(size=1000)
>>> ds = WindowDataset(X, y, T=100, normalizer=lobfast.Normalizer().fit(X, rows=slice(0, 600)))
>>> len(ds), ds[0][0].shape
(901, torch.Size([100, 40]))
>>> xb, yb = next(iter(loader(ds, batch_size=256, shuffle=True, seed=0)))
>>> tuple(xb.shape), xb.dtype, tuple(yb.shape)
((256, 100, 40), torch.float32, (256,))
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

try:
    import torch
except ImportError as e:  # pragma: no cover - exercised only without torch
    raise ImportError("lobfast.torch needs PyTorch: pip install 'lobfast[torch]'") from e

from . import _core
from . import split as _split
from .errors import LobWarning
from .frame import Frame, LabelFrame
from .store import Store, open_store
from .windowing import Normalizer, TargetScaler, _as_rows, _positive, as_features, first_nonfinite, window_index

__all__ = ["BatchLoader", "PanelDataset", "PanelSplit", "WindowDataset", "collate_batch", "loader"]

_EMPTY = np.empty(0, np.int64)
_NP = {torch.float32: np.float32, torch.float64: np.float64}


def collate_batch(batch: Any) -> Any:
    """The ``collate_fn`` for a DataLoader over a :class:`WindowDataset`: the batch as it is."""
    return batch


class WindowDataset(torch.utils.data.Dataset):
    """Windows of ``T`` rows of ``X`` paired with the label of each window's last row.

    Items are ``(window, label)``; without labels (``y=None``, for inference) they are
    ``(window,)``, as batches are ``(x, y)`` or ``(x,)``: ``for x, *_ in loader(ds)`` reads both.

    Parameters
    ----------
    X : ``(N, F)`` float32/float64 array, :class:`lobfast.BookSnapshots` (DeepLOB layout in
        float64, its ``valid`` used) or :class:`lobfast.FeatureFrame`. Kept as is when it already is
        a C-contiguous float array (no copy).
    y : labels per row: ``(N,)`` or ``(N, K)`` array, or a :class:`lobfast.LabelFrame`
        (all its columns; ``ts`` must match ``X``'s). Float labels are regression targets
        (float tensors), integer labels are classes (int64 tensors); see ``classes``.
        None: no labels (for :func:`lobfast.train.predict`); every usable window is kept.
    T : window length in rows.
    indices : which window ends to use (slice, bool mask or int rows, e.g. a split's ``train``);
        default every end. Ends whose window touches an unusable row, or whose label is NaN,
        are left out and counted in ``dropped``.
    normalizer : a fitted :class:`lobfast.Normalizer`, applied inside the gather.
    dtype : ``torch.float32`` (default) or ``torch.float64`` windows.
    valid : bool per row (default: the book's ``valid`` for BookSnapshots, else all rows).
        A row that is valid must be finite in every feature, else ``ValueError`` naming
        the column and first row; an invalid row may hold anything.
    classes : the labels are classes given as floats with NaN (as from
        :func:`lobfast.labels.classify`: -1 down, 0 stationary, +1 up): windows with a NaN
        label are left out and the rest become int64 classes 0, 1, 2 (down, stationary,
        up), whatever classes occur. Labels already in 0 .. C-1 go in as an integer array.
    pin_memory : allocate batches in page-locked memory (only when CUDA is available), so
        ``.to("cuda", non_blocking=True)`` overlaps the copy.
    threads : threads that share each batch copy (default: the usable cores, at most 8);
        batches under 256k values are copied by one.
    """

    def __init__(
        self,
        X: Any,
        y: Any,
        T: int,
        indices: Any = None,
        normalizer: Normalizer | None = None,
        dtype: torch.dtype = torch.float32,
        *,
        valid: Any = None,
        classes: bool = False,
        pin_memory: bool = False,
        threads: int | None = None,
    ) -> None:
        X_, names, ts, book_valid = as_features(X)
        self.X = np.ascontiguousarray(X_)
        n = len(self.X)
        self.T = _positive(T, "T")
        if self.T > n:
            raise ValueError(f"a window of {self.T} rows is longer than the data ({n} rows)")
        if dtype not in _NP:
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.dtype = dtype
        self.y = None if y is None else _labels(y, X, n)
        valid = book_valid if valid is None else np.asarray(valid)
        valid = np.ones(n, bool) if valid is None else valid
        if valid.shape != (n,) or valid.dtype != bool:
            raise ValueError(f"valid must be {n} bools, one per row, got {valid.dtype} with shape {valid.shape}")
        bad = first_nonfinite(self.X, valid)
        if bad is not None:
            r, c = bad
            raise ValueError(
                f"feature {names[c]!r} is {self.X[r, c]} at row {r}, a row marked valid: "
                f"fix it or mark the row invalid (valid=...) so its windows are left out"
            )
        self.normalizer = normalizer
        self._norm: tuple[Any, ...] = (None, None, None)
        if normalizer is not None:
            self._norm = normalizer.params(n)
            if self._norm[0].shape[1] != self.X.shape[1]:
                raise ValueError(f"the normalizer was fitted on {self._norm[0].shape[1]} features, X has {X_.shape[1]}")
            if normalizer.usable is not None:
                valid = valid & normalizer.usable
        usable = window_index(valid, self.T, target=self.y if self.labelled and self.y.dtype.kind == "f" else None)
        if classes:
            if not self.labelled:
                raise ValueError("classes=True needs labels, got y=None")
            self.y = _classes(self.y, usable)
        if indices is None:
            self.ends = usable
            self.dropped = 0
        else:
            want = np.unique(_as_rows(indices, n))
            self.ends = want[np.isin(want, usable)]
            self.dropped = len(want) - len(self.ends)
        self.ts = None if ts is None else ts[self.ends]
        self.names = names
        self.pin_memory = bool(pin_memory) and torch.cuda.is_available()
        self.threads = min(len(os.sched_getaffinity(0)), 8) if threads is None else _positive(threads, "threads")

    # --- map-style Dataset ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ends)

    @property
    def labelled(self) -> bool:
        """Whether the windows have labels (``y`` was given)."""
        return self.y is not None

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows")
        return tuple(t[0] for t in self.batch([i]))

    def __getitems__(self, positions: Sequence[int]) -> tuple[torch.Tensor, ...]:
        return self.batch(positions)

    def batch(self, positions: Any) -> tuple[torch.Tensor, ...]:
        """``(x, y)`` for windows at ``positions`` (0 .. len-1): ``(B, T, F)`` and ``(B, ...)``;
        ``(x,)`` without labels."""
        ends = self.ends[np.asarray(positions, dtype=np.int64)]
        if not self.labelled:
            return (self.gather(ends),)
        return self.gather(ends), torch.from_numpy(self.y[ends])

    def gather(self, ends: np.ndarray, out: torch.Tensor | None = None) -> torch.Tensor:
        """The normalised windows ending at rows ``ends`` in one C call, into ``out`` or a new tensor."""
        shape = (len(ends), self.T, self.X.shape[1])
        if out is None:
            out = torch.empty(shape, dtype=self.dtype, pin_memory=self.pin_memory)
        elif tuple(out.shape) != shape or out.device.type != "cpu" or not out.is_contiguous():
            raise ValueError(f"out must be a contiguous CPU tensor of shape {shape}")
        shift, scale, group = self._norm
        # one core cannot fill the memory bandwidth a large batch copy can use
        threads = self.threads if out.numel() >= 1 << 18 else 1
        _core.window_gather(self.X, ends, self.T, out.numpy(), shift, scale, group, threads)
        return out

    def features(self, positions: Any = None, flat: bool = True) -> np.ndarray:
        """Windows as a NumPy array for scikit-learn baselines: ``(B, T*F)`` when ``flat``."""
        pos = np.arange(len(self)) if positions is None else positions
        x = self.gather(self.ends[np.asarray(pos, dtype=np.int64)]).numpy()
        return x.reshape(len(x), -1) if flat else x

    @property
    def targets(self) -> np.ndarray:
        """The label of every window, in dataset order."""
        if not self.labelled:
            raise ValueError("this dataset has no labels (built with y=None)")
        return self.y[self.ends]

    def __repr__(self) -> str:
        labels = f"labels {self.y.shape[1:] or 'scalar'} {self.y.dtype}" if self.labelled else "no labels"
        return f"WindowDataset({len(self)} windows of {self.T}x{self.X.shape[1]}, {labels}, dropped {self.dropped})"


class PanelDataset(torch.utils.data.Dataset):
    """Windows of many symbols as one dataset: one :class:`WindowDataset` per symbol (its own
    rows, labels, normaliser and usable windows), so a window never crosses a symbol, an
    invalid row or anything its symbol's dataset leaves out.  Items are ``(window, label,
    symbol id)`` (``(window, symbol id)`` without labels); a batch gathers each symbol's
    windows with that dataset's one C call.  Positions run through the symbols in order:
    :func:`lobfast.train.predict` returns the predictions of ``parts[0]``, then ``parts[1]``...

    Two forms:

    - ``PanelDataset({symbol: WindowDataset})``: parts built by hand.  Build each on the same
      split times (``indices=`` from one :func:`lobfast.split.chronological` cut, then
      :func:`lobfast.split.cut` at its boundaries for every symbol) to train one pooled model
      honestly.
    - ``PanelDataset(store, symbols, start, end, T, ...)``, the same as
      :meth:`from_store`: straight from a store, with :meth:`split` and
      :meth:`walk_forward` cutting every symbol at the same times.

    Parameters
    ----------
    parts : ``{symbol: WindowDataset}``; every part has the same window length, number of
        features and dtype, and all or none have labels.

    Attributes
    ----------
    symbols : the symbols, in order (``symbols[id]`` names a batch's symbol id).
    parts : their WindowDatasets (``part(symbol)``).
    stats : per symbol, what :meth:`from_store` found: rows, invalid rows, rows with a
        non-finite feature, holes (missing stretches of the grid, e.g. a missing day) and
        windows; ``{}`` for a panel built by hand.
    scalers : ``{symbol: TargetScaler}`` with ``scale_target=True`` (else empty): the labels
        of the windows are ``scalers[symbol].transform(label)``.
    """

    def __init__(self, parts: Any, *args: Any, **kwargs: Any) -> None:
        if not isinstance(parts, Mapping):
            if not isinstance(parts, (Store, str, os.PathLike)):
                raise TypeError(
                    f"PanelDataset takes {{symbol: WindowDataset}} or a store (and symbols, start, end, T), "
                    f"not {type(parts).__name__}"
                )
            built = PanelDataset.from_store(parts, *args, **kwargs)
            self.__dict__.update(built.__dict__)
            return
        if args or kwargs:
            raise TypeError("PanelDataset({symbol: WindowDataset}) takes no other arguments")
        if not parts:
            raise ValueError("a panel needs at least one symbol: {symbol: WindowDataset}")
        self.symbols = [str(s) for s in parts]
        self.parts = list(parts.values())
        first = self.parts[0]
        for sym, p in zip(self.symbols, self.parts):
            if not isinstance(p, WindowDataset):
                raise TypeError(f"parts[{sym!r}] must be a WindowDataset, not {type(p).__name__}")
            same = (p.T, p.X.shape[1], p.dtype, p.labelled) == (first.T, first.X.shape[1], first.dtype, first.labelled)
            if not same:
                raise ValueError(
                    f"parts[{sym!r}] has windows of {p.T}x{p.X.shape[1]} {p.dtype}, labelled={p.labelled}; "
                    f"parts[{self.symbols[0]!r}] {first.T}x{first.X.shape[1]} {first.dtype}, labelled={first.labelled}"
                )
        self.T, self.dtype, self.names = first.T, first.dtype, first.names
        self.offsets = np.cumsum([0] + [len(p) for p in self.parts])
        self.symbol = np.repeat(np.arange(len(self.parts)), np.diff(self.offsets))  # symbol id per position
        self._source: dict[str, _SymbolRows] | None = None
        self._options: dict[str, Any] = {}
        self.stats: dict[str, dict[str, int]] = {}
        self.scalers: dict[str, TargetScaler] = {}

    # --- straight from the store ------------------------------------------------------------
    @classmethod
    def from_store(
        cls,
        store: Any,
        symbols: Any = None,
        start: Any = None,
        end: Any = None,
        T: int = 100,
        *,
        features: Any = None,
        label: Any = None,
        normalizer: Any = None,
        venue: str | None = None,
        scale_target: bool = False,
        classes: bool = False,
        dtype: torch.dtype = torch.float32,
        threads: int | None = None,
    ) -> PanelDataset:
        """The windows of ``symbols`` between ``start`` and ``end`` in a store (see
        :func:`lobfast.open_store`), one part per symbol.

        A window never crosses a symbol, a row whose book is invalid, a row with a non-finite
        feature (the first rows of a recording, before a rolling feature has its look-back),
        or a hole in the grid: rows after a missing stretch (a day without a partition, a
        failed partition, a gap in the recording) never share a window with rows before it.
        Each symbol's rows are kept once; :meth:`split` and :meth:`walk_forward` make panels
        over the same rows.

        Parameters
        ----------
        store : a :class:`lobfast.store.Store` or the path of one.
        symbols : a symbol, a list of them, or None: every symbol with rows in the span.
        start, end : rows with ``start <= ts < end`` (anything :func:`lobfast.to_ns` reads);
            None: from the first / to the last row.
        T : window length in rows.
        features : the feature columns, in order: names of the ``features`` table or of the
            ``book`` table (``bid_px_1``...), a list or ``"mid,ofi_10s,..."``; default every
            column of the ``features`` table.
        label : the label column(s) of the ``labels`` table (a name or a list), or None (no
            labels: for :func:`lobfast.train.predict`).  Their ``<name>_known_at`` columns
            purge the splits.
        normalizer : ``"zscore"``, ``"decimal_precision"``, ``"rolling_zscore"``, a
            :class:`lobfast.Normalizer` (its settings) or None.  Fitted per symbol: on all its
            rows here, on its training rows only in :meth:`split` / :meth:`walk_forward`.
        scale_target : train on labels standardised per symbol (a
            :class:`lobfast.TargetScaler`, in ``scalers``), fitted like the normaliser: on all
            rows here, on the training rows only in :meth:`split` / :meth:`walk_forward`
            (returns of symbols at other prices and volatilities then weigh alike in one
            pooled model).  :func:`lobfast.train.evaluate_per_symbol` turns predictions back.
        venue : the venue, when a symbol is in several.
        classes, dtype, threads : as for :class:`WindowDataset`.
        """
        st = store if isinstance(store, Store) else open_store(store)
        T = _positive(T, "T")
        fnames, bnames = _store_features(st, features)
        labels = [] if label is None else _column_names(label, "label")
        known = [f"{n}_known_at" for n in labels]
        if scale_target and (not labels or classes):
            raise ValueError("scale_target=True needs regression labels (label=..., classes=False)")
        if labels:
            have = list(st.params.get("labels") or [])
            missing = [n for n in labels if n not in have]
            if missing:
                raise ValueError(f"the store has no label {missing[0]!r}; its labels are {have or 'none'}")
        want = None if symbols is None else ([symbols] if isinstance(symbols, str) else [str(s) for s in symbols])
        feat = st.load("features", want, start, end, columns=fnames, venue=venue) if fnames else None
        book = st.load("book", want, start, end, columns=["valid", *bnames], venue=venue)
        lab = st.load("labels", want, start, end, columns=labels + known, venue=venue) if labels else None
        names = sorted(book) if want is None else want
        if not names:
            raise ValueError(f"the store {st.path} has no rows between {start} and {end}")
        every = int(st.params["every_ns"])
        source, stats = {}, {}
        for sym in names:
            if sym not in book or len(book[sym]) == 0:
                have = ", ".join(sorted(book)) or "none"
                raise ValueError(f"the store has no rows of {sym} between {start} and {end} (it has {have})")
            b = book[sym]
            for what, frames in (("features", feat), ("labels", lab)):
                fr = None if frames is None else frames.get(sym, Frame(np.empty(0, np.int64)))
                if fr is not None and not np.array_equal(fr.ts, b.ts):
                    raise ValueError(
                        f"{sym}: the {what} table's rows are not the book's ({len(fr)} rows, the book "
                        f"{len(b)}, or other times): rebuild the store"
                    )
            order = _column_names(features, "features") if features is not None else fnames
            X = np.empty((len(b), len(order)), np.float64)
            for j, n in enumerate(order):
                X[:, j] = feat[sym][n] if n in fnames else b[n]
            y = None
            kn = None
            if labels:
                lf = lab[sym]
                y = lf[labels[0]] if len(labels) == 1 else np.column_stack([lf[n] for n in labels])
                k = np.vstack([np.asarray(lf[n], np.int64) for n in known])
                kn = np.where((k < 0).any(axis=0), -1, k.max(axis=0))
            source[sym], stats[sym] = _SymbolRows.make(sym, b.ts, X, y, kn, b["valid"] != 0, every, T, order)
        opts = dict(T=T, normalizer=_norm_spec(normalizer), classes=classes, dtype=dtype, threads=threads, names=order)
        opts["scale_target"] = bool(scale_target)
        fitted = {s: _fit_symbol(opts, s, r, None) for s, r in source.items()}
        panel = _panel(source, opts, {s: r.ends(T) for s, r in source.items()}, fitted)
        for s, p in zip(panel.symbols, panel.parts):
            stats[s]["windows"] = len(p)
        panel.stats = stats
        return panel

    def part(self, symbol: str) -> WindowDataset:
        """The :class:`WindowDataset` of one symbol."""
        if symbol not in self.symbols:
            raise KeyError(f"no symbol {symbol!r} in this panel ({', '.join(self.symbols)})")
        return self.parts[self.symbols.index(symbol)]

    @property
    def ts(self) -> np.ndarray | None:
        """The time of each window's last row, in panel order (None for a panel built by hand
        from parts without times)."""
        if self._source is not None:
            return np.concatenate([self._source[s].ts[p.ends] for s, p in zip(self.symbols, self.parts)])
        if all(p.ts is not None for p in self.parts):
            return np.concatenate([p.ts for p in self.parts])
        return None

    def _pooled_ts(self) -> np.ndarray:
        if self._source is None:
            raise ValueError(
                "split / walk_forward need a panel made from a store (PanelDataset.from_store); for parts "
                "built by hand, cut each symbol with lobfast.split.cut at the same boundaries"
            )
        ts = np.sort(self.ts)
        if not len(ts):
            raise ValueError("the panel has no windows to split")
        return ts

    def _cut(self, boundaries, start, end, known_at, embargo) -> PanelSplit:
        """Every symbol's windows cut at the same times (lobfast.split.cut), normalisers fitted
        on each symbol's training rows."""
        splits = {}
        for s, p in zip(self.symbols, self.parts):
            r = self._source[s]
            kn = r.known if isinstance(known_at, str) and known_at == "labels" else known_at
            splits[s] = _split.cut(r.ts, boundaries, start=start, end=end, known_at=kn, embargo=embargo, rows=p.ends)
        spec, opts = self._options["normalizer"], self._options
        needs_fit = (spec is not None and spec.method != "rolling_zscore") or opts["scale_target"]
        ends = {k: {s: getattr(sp, k) for s, sp in splits.items()} for k in ("train", "val", "test")}
        fitted, left_out = {}, {}
        for s, sp in splits.items():
            if needs_fit and not len(sp.train):
                # nothing to fit this symbol's normaliser on: its later windows cannot be scaled
                left_out[s] = len(sp.val) + len(sp.test)
                ends["val"][s] = ends["test"][s] = _EMPTY
                fitted[s] = (None, None)
            else:
                fitted[s] = _fit_symbol(opts, s, self._source[s], sp.train)
        left_out = {s: n for s, n in left_out.items() if n}
        if left_out:
            warnings.warn(
                LobWarning(
                    f"{', '.join(left_out)} have no training windows before {_when(boundaries[0])}: their "
                    f"{sum(left_out.values())} later windows are left out of this cut (no training rows to fit "
                    "their normaliser or target scaler on)"
                ),
                stacklevel=3,
            )
        parts = [_panel(self._source, opts, ends[k], fitted) for k in ("train", "val", "test")]
        bounds = np.asarray(boundaries, np.int64)
        return PanelSplit(parts[0], parts[1] if len(bounds) == 2 else None, parts[2], bounds, splits, left_out)

    def split(
        self, fractions: Sequence[float] = (0.6, 0.2, 0.2), *, known_at: Any = "labels", embargo: Any = 0
    ) -> PanelSplit:
        """Train / validation / test panels cut at the same times for every symbol.

        The boundaries fall at ``fractions`` of all the panel's windows pooled over the
        symbols in time order (as :func:`lobfast.split.chronological` cuts one series); each
        symbol's windows are then cut there, purged and embargoed as that function does
        (:func:`lobfast.split.cut`).

        Parameters
        ----------
        fractions : (train, val, test) or (train, test), positive, summing to 1.
        known_at : ``"labels"`` (default): when each window's labels are known, from the
            store's ``<label>_known_at`` columns; a horizon (``int`` rows of the symbol, or a
            duration); or None (nothing purged).
        embargo : ``int`` rows or a duration dropped after each boundary (see
            :func:`lobfast.split.chronological`).

        Returns
        -------
        :class:`PanelSplit` (``train, val, test = panel.split(...)``); the normaliser is
        fitted on each symbol's training rows only and used for its val and test windows.
        """
        bounds = _split.chronological(self._pooled_ts(), fractions).boundaries
        return self._cut(bounds, None, None, self._known(known_at), embargo)

    def walk_forward(
        self,
        n_splits: int,
        *,
        train: Any = None,
        test: Any = None,
        val: Any = 0.0,
        known_at: Any = "labels",
        embargo: Any = 0,
        expanding: bool = True,
    ) -> list[PanelSplit]:
        """Walk-forward folds cut at the same times for every symbol: the folds of
        :func:`lobfast.split.walk_forward` over all windows pooled in time order (sizes count
        pooled windows), each symbol then cut at each fold's boundaries and span, purged and
        embargoed (``known_at``, ``embargo`` as in :meth:`split`).  One :class:`PanelSplit`
        per fold (``val`` None without validation), normalisers fitted on each fold's
        training rows."""
        ts = self._pooled_ts()
        folds = _split.walk_forward(ts, n_splits, train=train, test=test, val=val, expanding=expanding)
        known_at = self._known(known_at)
        out = []
        for f in folds:
            rows = f.rows
            last = int(rows[-1]) + 1
            span_end = int(ts[last]) if last < len(ts) else None
            out.append(self._cut(f.boundaries, int(ts[rows[0]]), span_end, known_at, embargo))
        return out

    def _known(self, known_at: Any) -> Any:
        if isinstance(known_at, str) and known_at == "labels":
            if not self.labelled:
                return None
            if any(r.known is None for r in self._source.values()):
                raise ValueError("known_at='labels' needs the labels' known_at times: pass a horizon or None")
        return known_at

    # --- the dataset ------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def labelled(self) -> bool:
        return self.parts[0].labelled

    @property
    def y(self) -> np.ndarray:
        """The labels of every window, in panel order (what the training loop checks)."""
        return self.targets

    @property
    def targets(self) -> np.ndarray:
        return np.concatenate([p.targets for p in self.parts])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows")
        return tuple(t[0] for t in self.batch([i % len(self)]))

    def __getitems__(self, positions: Sequence[int]) -> tuple[torch.Tensor, ...]:
        return self.batch(positions)

    def batch(self, positions: Any) -> tuple[torch.Tensor, ...]:
        """``(x, y, symbol)`` for panel positions (``(x, symbol)`` without labels)."""
        pos = np.asarray(positions, dtype=np.int64)
        sym = self.symbol[pos]
        # each symbol's windows gathered by one C call into a contiguous run of a buffer,
        # then put in the order asked (one copy) when they were not already grouped
        order = np.argsort(sym, kind="stable")
        grouped = bool((order == np.arange(len(pos))).all())
        runs = np.concatenate(([0], np.cumsum(np.bincount(sym, minlength=len(self.parts)))))
        first = self.parts[0]
        shape = (len(pos), self.T, first.X.shape[1])
        x = torch.empty(shape, dtype=self.dtype, pin_memory=first.pin_memory)
        xs = x if grouped else torch.empty(shape, dtype=self.dtype)
        ys = np.empty((len(pos), *first.y.shape[1:]), first.y.dtype) if self.labelled else None
        local = pos[order] - self.offsets[sym[order]]
        for k in np.flatnonzero(runs[1:] > runs[:-1]):
            a, b = runs[k], runs[k + 1]
            part = self.parts[k]
            ends = part.ends[local[a:b]]
            part.gather(ends, out=xs[a:b])
            if ys is not None:
                ys[a:b] = part.y[ends]
        if not grouped:
            back = np.empty_like(order)
            back[order] = np.arange(len(order))
            np.take(xs.numpy(), back, axis=0, out=x.numpy())  # one thread: torch's threads only wait here
            ys = None if ys is None else ys[back]
        ids = torch.from_numpy(sym.astype(np.int64))
        return (x, torch.from_numpy(ys), ids) if self.labelled else (x, ids)

    def __repr__(self) -> str:
        counts = ", ".join(f"{s} {len(p)}" for s, p in zip(self.symbols, self.parts))
        return f"PanelDataset({len(self)} windows of {self.T}x{self.parts[0].X.shape[1]}: {counts})"


@dataclass(repr=False)
class _SymbolRows:
    """One symbol's rows as loaded from a store, shared by every panel cut from them."""

    ts: np.ndarray
    X: np.ndarray
    y: np.ndarray | None
    known: np.ndarray | None  # when the row's labels are all known (int64 ns), -1: a label unknown
    valid: np.ndarray  # book valid and every feature finite
    segment: np.ndarray  # int64 per row: a new segment starts after each hole in the grid

    @classmethod
    def make(cls, sym, ts, X, y, known, book_valid, every, T, names) -> tuple[_SymbolRows, dict[str, int]]:
        n = len(ts)
        if n < T:
            raise ValueError(f"{sym} has {n} rows in the span, fewer than a window of {T}")
        step = np.diff(ts)
        if len(step) and step.min() <= 0:
            i = int(np.argmax(step <= 0)) + 1
            raise ValueError(f"{sym}: the store's rows are not in time order at row {i} (ts {ts[i]})")
        hole = step > every
        finite = np.isfinite(X).all(axis=1)
        dead = ~np.isfinite(X[book_valid]).any(axis=0)
        if book_valid.any() and dead.any():
            raise ValueError(
                f"feature {names[int(np.argmax(dead))]!r} of {sym} is never finite on a valid row "
                "(e.g. a rolling span no longer than the grid step): leave it out of features="
            )
        rows = cls(ts, X, y, known, book_valid & finite, np.concatenate(([0], np.cumsum(hole))))
        stats = {"rows": n, "invalid": int((~book_valid).sum()), "nonfinite": int((book_valid & ~finite).sum())}
        stats["holes"] = int(hole.sum())
        return rows, stats

    def ends(self, T: int) -> np.ndarray:
        """The window ends whose T rows lie between two holes (validity is WindowDataset's)."""
        ends = np.arange(T - 1, len(self.ts), dtype=np.int64)
        return ends[self.segment[ends] == self.segment[ends - (T - 1)]]


@dataclass(repr=False)
class PanelSplit:
    """Panels of one cut made at the same times for every symbol (:meth:`PanelDataset.split`,
    :meth:`PanelDataset.walk_forward`); unpacks as ``train, val, test``.

    Attributes
    ----------
    train, val, test : :class:`PanelDataset` (``val`` None for a two-part cut).
    boundaries : int64 ns, where val (when there is one) and test start; the same for every symbol.
    splits : ``{symbol: lobfast.split.Split}``, each symbol's rows and what was purged,
        embargoed or unlabelled.
    left_out : ``{symbol: windows}``: val and test windows of symbols without a training
        window in this cut, left out (with a LobWarning) because their normaliser has
        nothing to be fitted on.
    """

    train: PanelDataset
    val: PanelDataset | None
    test: PanelDataset
    boundaries: np.ndarray
    splits: dict[str, Any] = field(default_factory=dict)
    left_out: dict[str, int] = field(default_factory=dict)

    def __iter__(self) -> Iterator[PanelDataset | None]:
        return iter((self.train, self.val, self.test))

    def __repr__(self) -> str:
        sizes = f"train {len(self.train)}" + (f", val {len(self.val)}" if self.val is not None else "")
        dropped = {k: sum(getattr(s, k) for s in self.splits.values()) for k in ("purged", "embargoed", "unlabelled")}
        return (
            f"PanelSplit({len(self.splits)} symbols; {sizes}, test {len(self.test)} windows; boundaries "
            f"{', '.join(map(_when, self.boundaries))}; dropped {dropped['purged']} purged, "
            f"{dropped['embargoed']} embargoed, {dropped['unlabelled']} unlabelled)"
        )


def _fit_symbol(opts: dict, sym: str, r: _SymbolRows, rows: Any) -> tuple[Any, Any]:
    """``(normaliser, target scaler)`` of one symbol fitted on ``rows`` (None: all rows)."""
    scaler = None
    if opts["scale_target"]:
        ends = r.ends(opts["T"]) if rows is None else rows
        try:
            scaler = TargetScaler().fit(r.y, rows=ends)
        except ValueError as e:
            raise ValueError(f"{sym}: {e}") from None
    return _fit_normalizer(opts["normalizer"], r, rows), scaler


def _panel(source, opts, ends, fitted) -> PanelDataset:
    parts = {}
    for s, r in source.items():
        norm, scaler = fitted[s]
        parts[s] = WindowDataset(
            r.X,
            r.y if scaler is None else scaler.transform(r.y),
            opts["T"],
            indices=ends[s],
            normalizer=norm,
            dtype=opts["dtype"],
            valid=r.valid,
            classes=opts["classes"],
            threads=opts["threads"],
        )
        parts[s].names = opts["names"]
    panel = PanelDataset(parts)
    panel._source, panel._options = source, opts
    panel.scalers = {s: f[1] for s, f in fitted.items() if f[1] is not None}
    return panel


def _norm_spec(normalizer: Any) -> Normalizer | None:
    """The normaliser's settings (a fresh, unfitted Normalizer), or None."""
    if normalizer is None:
        return None
    if isinstance(normalizer, str):
        return Normalizer(normalizer)
    if isinstance(normalizer, Normalizer):
        return Normalizer(normalizer.method, lookback=normalizer.lookback, period=normalizer.period)
    raise TypeError(f"normalizer must be a method name, a Normalizer or None, not {type(normalizer).__name__}")


def _fit_normalizer(spec: Normalizer | None, r: _SymbolRows, rows: Any) -> Normalizer | None:
    """A normaliser with ``spec``'s settings fitted on ``rows`` of one symbol (None: all)."""
    if spec is None:
        return None
    norm = Normalizer(spec.method, lookback=spec.lookback, period=spec.period)
    if norm.method == "rolling_zscore":
        return norm.fit(r.X, ts=r.ts, valid=r.valid)  # each period from earlier periods only
    return norm.fit(r.X, rows=rows, valid=r.valid)


def _when(ns: Any) -> str:
    return np.datetime_as_string(np.datetime64(int(ns), "ns"), unit="s")


def _column_names(value: Any, what: str) -> list[str]:
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [str(n).strip() for n in names]
    if not names or not all(names):
        raise ValueError(f"{what} must name at least one column, got {value!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} names a column twice: {value!r}")
    return names


def _store_features(st: Any, features: Any) -> tuple[list[str], list[str]]:
    """The requested columns of the features table and of the book table."""
    have = list(st.params.get("features") or [])
    if features is None:
        if not have:
            raise ValueError("the store has no features table: name book columns in features=")
        return have, []
    levels = int(st.params["levels"])
    book = [f"{side}_{k}" for side in ("bid_px", "bid_sz", "ask_px", "ask_sz") for k in range(1, levels + 1)]
    names = _column_names(features, "features")
    for n in names:
        if n not in have and n not in book:
            raise ValueError(
                f"no column {n!r} in the store's features ({', '.join(have) or 'none'}) or book "
                f"(bid_px_1..{levels}, bid_sz_, ask_px_, ask_sz_)"
            )
    return [n for n in names if n in have], [n for n in names if n not in have]


def _labels(y: Any, X: Any, n: int) -> np.ndarray:
    if isinstance(y, LabelFrame):
        if isinstance(X, Frame) or hasattr(X, "ts"):
            xts = X.ts
            if len(xts) == len(y.ts) and not np.array_equal(xts, y.ts):
                i = int(np.argmax(xts != y.ts))
                raise ValueError(f"labels are misaligned with the features: ts differs first at row {i}")
        y = y.to_numpy() if len(y.keys()) > 1 else y[next(iter(y.keys()))]
    elif isinstance(y, Frame):
        raise TypeError("y must be labels (a LabelFrame or an array), not a feature frame")
    y = np.asarray(y)
    if len(y) != n:
        raise ValueError(f"labels have {len(y)} rows, the features {n}: labels must be aligned row by row")
    if y.ndim not in (1, 2):
        raise ValueError(f"labels must be (N,) or (N, K), got shape {y.shape}")
    if y.dtype.kind == "f":
        return np.ascontiguousarray(y, dtype=np.float32 if y.dtype == np.float32 else np.float64)
    if y.dtype.kind in "iub":
        return np.ascontiguousarray(y, dtype=np.int64)
    raise TypeError(f"labels must be numeric, got {y.dtype}")


def _classes(y: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """-1/0/+1 (down/stationary/up, NaN unknown) to int64 classes 0/1/2: one fixed encoding,
    never inferred from which classes happen to occur."""
    if y.ndim != 1:
        raise ValueError(f"class labels must be 1-D, got shape {y.shape}")
    used = y[ends]
    if len(used) and not np.isin(used, (-1.0, 0.0, 1.0)).all():
        bad = used[~np.isin(used, (-1.0, 0.0, 1.0))][0]
        raise ValueError(
            f"classes=True takes -1/0/+1 labels (labels.classify), got {bad}; labels already 0..C-1 "
            "go in as an integer array without classes=True"
        )
    return np.where(np.isfinite(y), y + 1, -1).astype(np.int64)


class BatchLoader:
    """Iterates ``(x, y)`` batches of a :class:`WindowDataset` (``(x,)`` without labels); made
    by :func:`loader`.

    Each epoch draws a new permutation from ``seed`` and the epoch number (reproducible;
    ``set_epoch`` to choose). ``device``: batches are moved there (non-blocking from
    pinned memory); on a GPU the next batch is gathered and copied on a side stream while
    the current one is in use.
    """

    def __init__(self, dataset, batch_size, shuffle, seed, drop_last, device):
        if not isinstance(dataset, (WindowDataset, PanelDataset)):
            raise TypeError(f"loader() takes a WindowDataset or PanelDataset, not {type(dataset).__name__}")
        self.dataset = dataset
        self.batch_size = _positive(batch_size, "batch_size")
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.device = None if device is None else torch.device(device)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n, b = len(self.dataset), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        n = len(self.dataset)
        order = np.arange(n)
        if self.shuffle:
            order = np.random.default_rng((self.seed, self.epoch)).permutation(n)
        self.epoch += 1

        def gather(k: int) -> tuple[torch.Tensor, ...]:
            return self.dataset.batch(order[k * self.batch_size : (k + 1) * self.batch_size])

        if self.device is not None and self.device.type == "cuda":
            yield from self._prefetched(gather)
            return
        for k in range(len(self)):
            batch = gather(k)
            if self.device is not None and self.device.type != "cpu":
                batch = tuple(t.to(self.device, non_blocking=True) for t in batch)
            yield batch

    def _prefetched(self, gather) -> Iterator[tuple[torch.Tensor, ...]]:
        """Batch k + 1 gathered and copied to the GPU on a side stream while batch k is used."""
        side = torch.cuda.Stream(self.device)

        def stage(k: int) -> tuple[torch.Tensor, ...]:
            host = gather(k)
            with torch.cuda.stream(side):
                return tuple(t.to(self.device, non_blocking=True) for t in host)

        nxt = stage(0) if len(self) else ()
        for k in range(len(self)):
            main = torch.cuda.current_stream(self.device)
            main.wait_stream(side)  # the copy of batch k is done before it is used
            batch = nxt
            for t in batch:
                t.record_stream(main)  # its memory is not reused while the main stream needs it
            if k + 1 < len(self):
                nxt = stage(k + 1)
            yield batch


def loader(
    dataset: WindowDataset,
    batch_size: int = 256,
    *,
    shuffle: bool = False,
    seed: int = 0,
    drop_last: bool = False,
    device: Any = None,
) -> BatchLoader:
    """Batches of ``dataset``: one C gather per batch, shuffled by index (see :class:`BatchLoader`)."""
    return BatchLoader(dataset, batch_size, shuffle, seed, drop_last, device)
