"""The store: folders of recordings turned into a Hive-partitioned Parquet dataset
(:func:`process`, ``lobfast process``) and read back (:func:`open_store`).

Layout::

    STORE/<table>/venue=<v>/symbol=<s>/date=<YYYY-MM-DD>/part-0.parquet
    STORE/_manifest.parquet      one row per partition: inputs, parameters, version, rows, status
    STORE/_store.json            the parameters the store is made with
    STORE/.lock                  held (flock) by the run writing the store, with its pid and host

Tables: ``book`` (the grid book: ``ts``, ``update_id``, ``valid``, ``bid_px_1..L``,
``bid_sz_1..L``, ``ask_px_1..L``, ``ask_sz_1..L``), ``features`` (:func:`lobfast.features`),
``labels`` (when asked; with ``<name>_known_at``), ``bars`` (when asked;
:func:`lobfast.aggregate`), ``trades`` and ``quotes`` (as read).  Times are exchange times,
int64 ns since the epoch, UTC (Parquet ``timestamp[ns, UTC]``); a row belongs to the UTC day of
its ``ts``.

One (venue, symbol, UTC day) is one task, and tasks are independent: a day's task reads
``[day - warm-up, next day + label reach)`` through the files' time index, rebuilds the grid
book (anchored on multiples of ``every``, so every task puts its rows on the same times),
computes features and labels over that span and keeps the day's rows.  The warm-up is the
feature spec's longest look-back; the task checks that the book was already valid where the
warm-up starts (else it reads from an earlier file, up to a day further back) and that the
data reaches past the labels' horizon (else it reads on), so that the store equals one
sequential pass over all the data, row for row: bit for bit, except sliding sums and
deviations (``ofi_w*``, ``ofi_<span>``, ``vol_*``, ``intensity_*``, ``smooth_*``), which carry
the (compensated) rounding of the rows before them and agree to about 1e-12 of the column's
scale.  Features without a bounded look-back (``ofi_cum``) and labels with one (``ema_*``)
cannot be computed per day and are refused.  Days without recordings have no partition.

Tardis.dev CSVs (``<exchange>_<data type>_<YYYY-MM-DD>_<SYMBOL>.csv.gz``, placed by their
names; venue = exchange) are read by :func:`lobfast.read_tardis`, one file per UTC day of
receive time and data type.  The book comes from ``incremental_book_L2`` when a symbol has
it: Tardis opens every such file with a snapshot of the book at midnight, so a day's task
reads the previous day's file whole (the warm-up) and the next day's up to the labels'
horizon; else from ``book_snapshot_N`` (the shallowest with ``N >= levels``), resampled to
the grid (:func:`lobfast.reconstruct`: the last snapshot at or before each grid time, cut to
``levels``).  ``trades`` fill the trades table, ``book_ticker`` (else ``quotes``) the quotes
table.  A day whose book file is missing fails, naming the file; a bad file fails the days
that read it (its own, the next and the previous); an empty file (Tardis' day without data)
is a day without those rows.  Other data types are not placed (``Summary.errors``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as _dt
import errno
import fcntl
import functools
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import socket
import stat
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from . import _core
from . import labels as _labels
from ._version import __version__
from .aggregation import aggregate
from .book import BookBuilder, reconstruct
from .containers import BookSnapshots, DepthEvents, Quotes, Trades
from .errors import LobError, LobWarning, _require, lob_error
from .frame import Frame
from .microstructure import TRADE_COLUMNS, default_spec, lookback
from .microstructure import features as _features
from .readers import iter_binance, read_tardis
from .reading import cpu_threads, expand_paths
from .sidecar import source_stamp
from .timeindex import _RAW_LINE, FileIndex, TimeIndex
from .times import parse_duration, parse_horizon, to_ns

__all__ = ["Spec", "Store", "Summary", "connect", "make_spec", "open_store", "process"]

STORE_FORMAT = 1
TABLES = ("book", "features", "labels", "bars", "trades", "quotes")
DAY = 86_400 * 10**9
# receive time - exchange time allowed at either end of a task's read (reads select by receive
# time, rows are kept by exchange time)
MARGIN = 60 * 10**9
MAX_STEP_BACK = DAY  # how much further back than its warm-up a task reads to find a valid book
ROW_GROUP = 50_000
CHUNK_ROWS = 500_000  # rows a task reads at a time (all tables together)
# Every this many chunks a task hands memory it freed back to the OS.  Chunks' columns are freed
# between the trades and grid rows kept (a day of busy USD-M: ~1.3 GB by the end of the read,
# which the heap keeps); handed back every few chunks, a day's task peaks below 2 GB.
TRIM_CHUNKS = 16
_NAME_TIME = re.compile(r"^(\d{8})-(\d{6})\.(\d{3})")  # the recorder's file names
_SKIP_SUFFIXES = (".lfidx", ".log", ".json", ".pid", ".tmp")


# ----------------------------------------------------------------------------- the spec


@dataclasses.dataclass(frozen=True)
class Spec:
    """What a store is made with: book levels, grid step (ns), feature and label names, bar
    size (ns, or None), and what follows from them: the warm-up and the labels' reach (ns)."""

    levels: int
    every: int
    features: tuple[str, ...]
    labels: tuple[str, ...]
    bars: int | None

    def params(self) -> dict[str, Any]:
        """The parameters as JSON-able values (what the store records and compares)."""
        return {
            "store_format": STORE_FORMAT,
            "levels": self.levels,
            "every_ns": self.every,
            "features": list(self.features),
            "labels": list(self.labels),
            "bars_ns": self.bars,
        }

    @property
    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.params(), sort_keys=True).encode()).hexdigest()[:16]

    @property
    def warmup(self) -> int:
        back = lookback(self.features, self.levels, self.every) if self.features else self.every
        for name in self.labels:
            back = max(back, _label_extent(name, self.every)[0])
        return back + 2 * self.every  # and the grid row on either side of the warm-up's start

    @property
    def reach(self) -> int:
        ahead = max((_label_extent(n, self.every)[1] for n in self.labels), default=0)
        return ahead + 2 * self.every if ahead else 0


_LABEL_FORMS = "ret_<h> (forward return over h rows or a span such as 10s), smooth_<k>, smooth_mean_<k> (k rows)"


def _label_extent(name: str, every: int) -> tuple[int, int]:
    """(look-back, look-ahead) in ns of a store label; ValueError for names it cannot make."""
    m = re.fullmatch(r"(ret|smooth_mean|smooth)_(\w+)", name)
    if name.startswith("ema_"):
        raise ValueError(
            f"label {name!r}: an EMA of returns mixes every earlier row (it restarts only after a gap), "
            "so a day cannot be computed on its own; the store makes " + _LABEL_FORMS
        )
    if not m:
        raise ValueError(f"unknown store label {name!r}; labels are {_LABEL_FORMS}")
    what, h = m.groups()
    if what == "ret":
        rows, ns = parse_horizon(int(h) if h.isdigit() else h, f"label {name!r}")
        return 0, rows * every if rows else ns
    if not h.isdigit() or int(h) <= 0:
        raise ValueError(f"label {name!r}: smoothed labels take a window in rows, such as {what}_10")
    k = int(h)
    return ((k + 1) * every if what == "smooth_mean" else 0), k * every


def _names(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    out = list(value)
    if not all(isinstance(v, str) for v in out):
        raise TypeError(f"{what} are names (strings), not {out!r}")
    return out


def make_spec(levels: int = 10, every="100ms", features="default", labels=None, bars=None) -> Spec:
    """Check and normalise :func:`process`'s parameters into a :class:`Spec`.

    ``features``: ``"default"`` (:func:`lobfast.microstructure.default_spec` without
    ``ofi_cum``), a list of names or a comma-separated string (``"default"`` may be one of
    them), or None for no features table.  ``labels``: names ``ret_<h>``, ``smooth_<k>``,
    ``smooth_mean_<k>`` (a list or a comma-separated string).  ``bars``: a duration that
    divides a day, or None.
    """
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or not 1 <= levels <= 1000:
        raise ValueError(f"levels must be an int in 1..1000, not {levels!r}")
    step = parse_duration(every, "every")
    if DAY % step:
        raise ValueError(f"every={every!r} must divide a day, so that every day's grid starts at midnight")
    names: list[str] = []
    for n in _names(features, "features"):
        if n == "default":
            names += [f for f in default_spec(int(levels)) if f != "ofi_cum"]
        elif n == "ofi_cum":
            raise ValueError(
                "feature 'ofi_cum' (the running sum of OFI since the book was last invalid) looks back without "
                "bound, so a day cannot be computed on its own: the store leaves it out; compute it from the "
                "stored 'ofi' column (a cumulative sum per run of valid rows) when you load the features"
            )
        else:
            names.append(n)
    names = list(dict.fromkeys(names))
    if names:
        lookback(names, int(levels), step)  # ValueError naming an unknown feature
    label_names = list(dict.fromkeys(_names(labels, "labels")))
    for n in label_names:
        _label_extent(n, step)
    bar = None
    if bars is not None:
        bar = parse_duration(bars, "bars")
        if DAY % bar:
            raise ValueError(f"bars={bars!r} must divide a day, so that no bar spans midnight")
    return Spec(int(levels), step, tuple(names), tuple(label_names), bar)


# ----------------------------------------------------------------------------- the inputs


@dataclasses.dataclass
class _File:
    path: str
    first: int  # receive time of its first line (ns); from the name when it has no index
    last: int  # of its last line
    error: str = ""  # why it could not be indexed
    warning: str = ""  # damage found while indexing (a truncated end, junk after the data)
    kind: str = ""  # a Tardis file's data type ("" for raw lines)


@dataclasses.dataclass
class _Group:
    """The files of one (venue, symbol), in time order."""

    venue: str
    symbol: str
    read_symbol: str | None  # symbol= for the reader (files holding several symbols)
    files: list[_File]
    tardis: bool = False  # Tardis CSVs (one file per day and data type), not raw lines

    def days(self) -> list[int]:
        out: set[int] = set()
        for f in self.files:
            out.update(range(f.first // DAY, f.last // DAY + 1))
        return sorted(d * DAY for d in out)

    def overlapping(self, s: int, e: int) -> list[_File]:
        return [f for f in self.files if f.first < e and f.last >= s]


def _name_time(path: str) -> int | None:
    m = _NAME_TIME.match(os.path.basename(path))
    if not m:
        return None
    try:
        d = _dt.datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S").replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        return None
    return int(d.timestamp()) * 10**9 + int(m.group(3)) * 10**6


def _is_data(name: str) -> bool:
    return not name.startswith((".", "_")) and not name.endswith(_SKIP_SUFFIXES)


def _check_src(p: str) -> None:
    """A SRC argument exists and can be read: FileNotFoundError / PermissionError naming it."""
    if any(ch in p for ch in "*?["):
        return  # a glob: expand_paths says when it matches nothing
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "no such file or directory", p) from None
    if not os.access(p, os.R_OK | (os.X_OK if stat.S_ISDIR(st.st_mode) else 0)):
        raise PermissionError(errno.EACCES, "cannot be read", p)


# path -> ((size, mtime_ns), _File, stamp): files a watching process has seen unchanged are
# not opened again each round (the stamp and index are read once per version of a file)
_SEEN: dict[str, tuple[tuple[int, int], _File, dict[str, Any]]] = {}


def _index(path: str) -> _File:
    """The file's time range from its time index (built on first use), or from its name."""
    try:
        st = os.stat(path)
        key = (st.st_size, st.st_mtime_ns)
        if path in _SEEN and _SEEN[path][0] == key:
            return dataclasses.replace(_SEEN[path][1])
        with warnings.catch_warnings(record=True) as caught:  # recorded with the file's partitions
            warnings.simplefilter("always", LobWarning)
            ix = FileIndex(path, format="raw")
        damage = "\n".join(str(w.message) for w in caught if issubclass(w.category, LobWarning))
        f = _File(path, ix.first_ts, ix.last_ts, warning=damage) if ix.rows else _File(path, 0, -1)  # -1: no day
        if (ix.stamp["size"], ix.stamp["mtime_ns"]) == key:
            _SEEN[path] = (key, dataclasses.replace(f), {"path": path, **ix.stamp})
        return f
    except (LobError, OSError) as e:  # placed by its name when it has the recorder's (its tasks fail)
        t = _name_time(path)
        return _File(path, -1 if t is None else t, -1 if t is None else t, f"{type(e).__name__}: {e}")


def _tree_groups(root: str, closed_only: bool, errors: list[str], venue_dir: bool = False) -> list[_Group]:
    """``root/<venue>/<symbol>/<files>`` as lobfast-collect writes it (``venue_dir``: ``root``
    is one ``<venue>`` folder); files that cannot be placed in time (no index, no recorder
    name) go to ``errors``."""
    groups = []
    venues = [os.path.basename(os.path.normpath(root))] if venue_dir else sorted(os.listdir(root))
    for venue in venues:
        vdir = os.path.normpath(root) if venue_dir else os.path.join(root, venue)
        if not os.path.isdir(vdir) or not _is_data(venue):
            continue
        for sym in sorted(os.listdir(vdir)):
            sdir = os.path.join(vdir, sym)
            if not os.path.isdir(sdir) or not _is_data(sym):
                continue
            names = sorted(
                n
                for n in os.listdir(sdir)
                if _is_data(n) and not _is_tardis(n) and os.path.isfile(os.path.join(sdir, n))
            )
            if closed_only:
                names = names[:-1]  # the newest is still being written: the recorder has not rotated it
            files = [_index(os.path.join(sdir, n)) for n in names]
            errors += [f"{f.path}: {f.error}" for f in files if f.error and f.first < 0]
            files = [f for f in files if f.first >= 0]
            _place_unindexed(files)
            files = [f for f in files if f.last >= f.first]
            if files:
                groups.append(_Group(venue, sym.upper(), None, sorted(files, key=lambda f: (f.first, f.path))))
    return groups


def _place_unindexed(files: list[_File]) -> None:
    """A file whose index could not be built covers, by its name, the time up to the next file's."""
    named = sorted(files, key=lambda f: f.first)
    for i, f in enumerate(named):
        if f.error:
            nxt = [g.first for g in named[i + 1 :] if g.first > f.first]
            f.last = (nxt[0] - 1) if nxt else f.first


def _depth(d: str) -> int:
    """2 for a recorder tree (folders of folders of files), 1 for one venue's folder (folders
    of files), 0 for a folder of recordings."""
    subs = [os.path.join(d, v) for v in os.listdir(d) if _is_data(v) and os.path.isdir(os.path.join(d, v))]
    if any(os.path.isdir(os.path.join(v, s)) for v in subs for s in os.listdir(v)):
        return 2
    return 1 if subs else 0


def _raw_groups(paths: list[str], closed_only: bool) -> tuple[list[_Group], list[str]]:
    """Files of raw lines: venue and symbol from the data (the first ten minutes of each file)."""
    if closed_only:
        newest: dict[str, str] = {}
        for p in paths:
            d = os.path.dirname(os.path.abspath(p))
            newest[d] = max(newest.get(d, ""), os.path.basename(p))
        paths = [p for p in paths if os.path.basename(p) != newest[os.path.dirname(os.path.abspath(p))]]
    groups: dict[tuple[str, str], _Group] = {}
    errors = []
    for p in paths:
        head = _core.head(p, 64)
        if head and not _RAW_LINE.match(head):
            raise lob_error(
                f"{p}: not a recording: its first line is not '<receive time ns> <message>' as lobfast-collect "
                f"writes (it starts with {head[:40]!r})",
                p,
            )
        f = _index(p)
        if f.error:
            errors.append(f"{p}: {f.error}")
            continue
        if f.last < f.first:
            continue
        # the first ten minutes name the symbols and the market (no book: nothing is replayed)
        md = TimeIndex(p, format="raw").read(None, f.first + 600 * 10**9, on_error="skip")
        syms = [s for s in str(md.stats.get("symbols", "")).split(",") if s]
        market = str(md.stats.get("market") or "")
        if market not in ("spot", "usdm"):
            market = "binance"
        for s in syms:
            g = groups.setdefault((market, s), _Group(market, s, s if len(syms) > 1 else None, []))
            if len(syms) > 1:
                g.read_symbol = s
            g.files.append(f)
    for g in groups.values():
        g.files.sort(key=lambda f: (f.first, f.path))
    return list(groups.values()), errors


# Tardis.dev file names: <exchange>_<data type>_<YYYY-MM-DD>_<SYMBOL>.csv[.gz|.zst]
_TARDIS_NAME = re.compile(
    r"^(?P<exchange>[a-z0-9-]+)_(?P<kind>incremental_book_L2|book_snapshot_\d+|trades|quotes|book_ticker|[a-z_]+?)"
    r"_(?P<date>\d{4}-\d{2}-\d{2})_(?P<symbol>[^/]+?)\.csv(?:\.gz|\.zst)?$"
)
_TARDIS_KINDS = "incremental_book_L2, book_snapshot_<N>, trades, quotes, book_ticker"


def _is_tardis(path: str) -> bool:
    return _TARDIS_NAME.match(os.path.basename(path)) is not None


def _tardis_below(root: str) -> list[str]:
    """The Tardis CSVs anywhere in a folder's tree (they are placed by their names)."""
    out = []
    for d, subs, names in os.walk(root):
        subs[:] = sorted(x for x in subs if _is_data(x))
        out += [os.path.join(d, n) for n in sorted(names) if _is_tardis(n)]
    return out


def _tardis_groups(paths: list[str], closed_only: bool) -> tuple[list[_Group], list[str]]:
    """Tardis CSVs, placed by their names: one file per (exchange, data type, day, symbol),
    holding that UTC day of ``local_timestamp``.  ``closed_only``: all of them (Tardis
    publishes whole days)."""
    groups: dict[tuple[str, str], _Group] = {}
    errors = []
    for p in paths:
        m = _TARDIS_NAME.match(os.path.basename(p))
        kind = m.group("kind")
        if not re.fullmatch(r"incremental_book_L2|book_snapshot_[1-9]\d*|trades|quotes|book_ticker", kind):
            errors.append(f"{p}: Tardis data type {kind!r} is not one the store takes ({_TARDIS_KINDS})")
            continue
        try:
            day = to_ns(m.group("date"), "date")
        except ValueError as e:
            errors.append(f"{p}: the date in its name: {e}")
            continue
        venue, symbol = m.group("exchange"), m.group("symbol").upper()
        g = groups.setdefault((venue, symbol), _Group(venue, symbol, None, [], tardis=True))
        twin = [f.path for f in g.files if f.first == day and f.kind == kind]
        if twin:
            errors.append(f"{p}: the same exchange, data type, day and symbol as {twin[0]} (one is read)")
            continue
        g.files.append(_File(p, day, day + DAY - 1, kind=kind))
    for g in groups.values():
        g.files.sort(key=lambda f: (f.first, f.kind, f.path))
    return list(groups.values()), errors


def _discover(srcs: list[str], closed_only: bool) -> tuple[list[_Group], list[str]]:
    groups: list[_Group] = []
    errors: list[str] = []
    loose: list[str] = []
    for p in srcs:
        if os.path.isdir(p):
            if _depth(p):
                groups += _tree_groups(p, closed_only, errors, venue_dir=_depth(p) == 1)
                loose += _tardis_below(p)
            else:
                loose += [os.path.join(p, n) for n in sorted(os.listdir(p)) if _is_data(n)]
        else:
            loose += expand_paths(p)
    loose = [p for p in dict.fromkeys(loose) if _is_data(os.path.basename(p))]
    tardis = [p for p in loose if _is_tardis(p)]
    if tardis:
        more, bad = _tardis_groups(tardis, closed_only)
        groups += more
        errors += bad
    raw = [p for p in loose if not _is_tardis(p)]
    if raw:
        more, bad = _raw_groups(raw, closed_only)
        groups += more
        errors += bad
    merged: dict[tuple[str, str], _Group] = {}
    for g in groups:  # one symbol given twice (a tree and its files): one group
        if (g.venue, g.symbol) in merged:
            m = merged[(g.venue, g.symbol)]
            seen = {f.path for f in m.files}
            m.files = sorted(m.files + [f for f in g.files if f.path not in seen], key=lambda f: (f.first, f.path))
        else:
            merged[(g.venue, g.symbol)] = g
    return list(merged.values()), errors


# ----------------------------------------------------------------------------- one task


def _date(day: int) -> str:
    return str(np.datetime64(day // DAY, "D"))


def _partition_dir(root: str, table: str, venue: str, symbol: str, date: str) -> str:
    return os.path.join(root, table, f"venue={venue}", f"symbol={symbol}", f"date={date}")


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tmp_name(path: str) -> str:
    """A hidden temporary file beside ``path`` (a killed run's is removed by the next run)."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def _publish(tmp: str, path: str) -> None:
    """Move the written, fsynced ``tmp`` over ``path`` and fsync the folder."""
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path))


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# no dictionary pages (float columns rarely repeat enough to pay for trying) and statistics
# only for the time column (what filters use): half the writing time
def _parquet_options(names: list[str]) -> dict[str, Any]:
    stats = [n for n in names if n in ("ts", "date", "venue", "symbol")] or False
    return {"compression": "zstd", "use_dictionary": False, "write_statistics": stats}


def _write_atomic(table, path: str) -> None:
    """Write a pyarrow Table to ``path``: a hidden temporary file in the same folder, fsync,
    rename over ``path``, fsync the folder.  A reader sees the old file or the new one, never
    part of one."""
    pq = _require("pyarrow.parquet", "parquet")
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as f:
            pq.write_table(table, f, row_group_size=ROW_GROUP, **_parquet_options(table.column_names))
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


class _DayWriter:
    """One table of a partition written as a read goes: :meth:`add` writes the day's rows of
    each chunk (row groups of up to ``ROW_GROUP`` rows) to a hidden temporary file, which
    :meth:`commit` moves into place as :func:`_write_atomic` does.  Memory holds a chunk, not
    the day (a busy USD-M day has ~17 M quotes, ~1 GB in memory)."""

    def __init__(self, name: str, path: str, day: int, meta: dict[str, str]) -> None:
        self.name, self.path, self.day, self.meta = name, path, day, meta
        self.rows, self._file, self._writer, self._tmp = 0, None, None, None

    def add(self, columns: dict[str, np.ndarray]) -> None:
        keep = _day_sorted_rows(columns["ts"], self.day)
        if len(keep) == 0:
            return
        table = _arrow(self.name, {k: v[keep] for k, v in columns.items()}, self.meta)
        if self._writer is None:
            pq = _require("pyarrow.parquet", "parquet")
            self._tmp = _tmp_name(self.path)
            self._file = open(self._tmp, "wb")
            self._writer = pq.ParquetWriter(self._file, table.schema, **_parquet_options(table.column_names))
        self._writer.write_table(table, row_group_size=ROW_GROUP)
        self.rows += len(keep)

    def commit(self, empty: dict[str, np.ndarray]) -> int:
        """Put the file in place (``empty``: the columns of a day without rows); its rows."""
        if self._writer is None:
            _write_atomic(_arrow(self.name, empty, self.meta), self.path)
            return 0
        try:
            self._writer.close()
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            _publish(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._file = self._writer = self._tmp = None
        return self.rows

    def abort(self) -> None:
        """Forget what was written (a read started again, or a failed task)."""
        if self._file is not None:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - the file goes anyway
                pass
            self._file.close()
            _unlink(self._tmp)
        self.rows, self._file, self._writer, self._tmp = 0, None, None, None


_UNITS = {
    "book": {
        "ts": "exchange time of the grid row, ns since the epoch (UTC)",
        "valid": "the book can be trusted",
        "bid_px_k, ask_px_k": "price, quote currency (NaN: no level)",
        "bid_sz_k, ask_sz_k": "size, base asset (0: no level)",
    },
    "features": {"ts": "as in book", "*": "see lobfast.features"},
    "labels": {"ts": "as in book", "<name>_known_at": "when the label is known, ns (-1: NaN label)"},
    "bars": {"ts": "bar start, ns since the epoch (UTC)", "*": "see lobfast.aggregate"},
    "trades": {"ts": "exchange time, ns", "local_ts": "receive time, ns", "side": "+1 taker buy, -1 taker sell"},
    "quotes": {"ts": "exchange time (receive time where the message has none), ns", "local_ts": "receive time, ns"},
}


def _arrow_array(pa, a: np.ndarray, kind=None):
    """A numeric NumPy column as an Arrow array over the same memory (booleans packed to
    bits).  ``pa.array`` would give the same array, but it imports pandas (about half a
    second of CPU in every worker process)."""
    a = np.ascontiguousarray(a)
    if a.dtype == np.bool_:
        return pa.Array.from_buffers(pa.bool_(), len(a), [None, pa.py_buffer(np.packbits(a, bitorder="little"))])
    if a.dtype.kind not in "iuf" or not a.dtype.isnative:
        return pa.array(a, type=kind)
    return pa.Array.from_buffers(kind or pa.from_numpy_dtype(a.dtype), len(a), [None, pa.py_buffer(a)])


def _arrow(name: str, columns: dict[str, np.ndarray], meta: dict[str, str]):
    pa = _require("pyarrow", "parquet")
    arrays, names = [], []
    stamp = pa.timestamp("ns", tz="UTC")
    for col, a in columns.items():
        if col in ("ts", "local_ts") or col.endswith("_known_at"):
            arrays.append(_arrow_array(pa, np.asarray(a, np.int64), stamp))
        else:
            arrays.append(_arrow_array(pa, a))
        names.append(col)
    t = pa.Table.from_arrays(arrays, names=names)
    return t.replace_schema_metadata({**meta, "lobfast_table": name, "lobfast_units": json.dumps(_UNITS[name])})


def _book_columns(b: BookSnapshots) -> dict[str, np.ndarray]:
    out = {"ts": b.ts, "update_id": b.update_id, "valid": b.valid}
    for side in ("bid_px", "bid_sz", "ask_px", "ask_sz"):
        levels = np.ascontiguousarray(getattr(b, side).T)  # one pass: each level's column contiguous
        for k in range(len(levels)):
            out[f"{side}_{k + 1}"] = levels[k]
    return out


def _concat(kind, parts: list) -> Any:
    parts = [p for p in parts if len(p)] or parts[:1]
    if len(parts) == 1:
        return parts[0]
    return kind(**{k: np.concatenate([p.columns[k] for p in parts]) for k in parts[0].columns})


def _read_span(files: list[str], symbol, s: int, e: int, spec: Spec, quotes: _DayWriter, threads: int | None):
    """The grid book and trades of receive times [s, e), read in chunks (zstd frames parsed
    on ``threads`` threads), with the day's quotes written to ``quotes`` as they come; and the
    last depth event's exchange time."""
    builder = BookBuilder(spec.levels, every=spec.every)
    books, trades, aggs = [], [], []
    last = -1
    chunks = iter_binance(files, symbol=symbol, start=s, end=e, chunk_rows=CHUNK_ROWS, threads=threads)
    for i, md in enumerate(chunks):
        if i % TRIM_CHUNKS == TRIM_CHUNKS - 1:
            _hand_back()  # the chunks' freed columns, scattered between the kept ones
        if len(md.depth):
            last = max(last, int(md.depth.ts[-1]))
        books.append(builder.feed(md.depth))
        trades.append(md.trades)
        aggs.append(md.agg_trades)
        quotes.add(md.quotes.columns)
    books.append(builder.finish())
    tr = _concat(Trades, trades)
    if not len(tr):
        tr = _concat(Trades, aggs)  # recordings of aggTrade only
    return _concat(BookSnapshots, books), tr, last


def _extended(task: dict, spec: Spec, quotes: _DayWriter) -> tuple[BookSnapshots, Trades, list[str]]:
    """Read the day's span, further back until the book was valid at the warm-up's start, and
    further on until the data passes the labels' horizon (see the module's notes); the day's
    quotes go to ``quotes``."""
    files = [_File(*f) for f in task["files"]]
    day = task["day"]
    want_start, want_end = day - spec.warmup, day + DAY + spec.reach
    data_start, data_end = min(f.first for f in files), max(f.last for f in files)
    s, e = want_start - MARGIN, want_end + MARGIN
    # from the start of the file holding the warm-up's start: recorders take a snapshot at
    # connect and periodically, so one usually falls in between (a seek-back would need none)
    s = max([f.first for f in files if f.first <= s] or [s])
    while True:
        used = [f.path for f in files if f.first < e and f.last >= s]
        quotes.abort()  # a span read again writes its quotes again
        book, trades, last = _read_span(used, task["read_symbol"], s, e, spec, quotes, task.get("threads"))
        valid_at = book.ts[book.valid]
        start_ok = s <= data_start or (len(valid_at) and valid_at[0] <= want_start) or want_start - s >= MAX_STEP_BACK
        end_ok = e > data_end or last >= want_end
        if start_ok and end_ok:
            return book, trades, used
        if not start_ok:  # the book was not known yet where the warm-up starts: from twice as far back
            back = max([f.first for f in files if f.first <= want_start - 2 * (want_start - s)] or [data_start])
            s = min(back, max([f.first for f in files if f.first < s] or [data_start]))
        if not end_ok:  # no event after the horizon yet: on to the next file
            e = min([f.first for f in files if f.first >= e] or [data_end]) + MARGIN


def _tardis_book_kind(files: list[_File], levels: int) -> str | None:
    """The data type a Tardis group's book comes from: ``incremental_book_L2`` when it has
    any, else the shallowest ``book_snapshot_N`` with ``N >= levels`` (else the deepest: its
    tasks fail, naming it); None without book files (the book tables are then empty)."""
    kinds = {f.kind for f in files}
    if "incremental_book_L2" in kinds:
        return "incremental_book_L2"
    depths = sorted(int(k.rsplit("_", 1)[1]) for k in kinds if k.startswith("book_snapshot_"))
    if not depths:
        return None
    return f"book_snapshot_{([n for n in depths if n >= levels] or depths[-1:])[0]}"


def _tardis_quote_kind(files: list[_File]) -> str | None:
    """``book_ticker`` (the exchange's own best bid/offer) when a group has it, else ``quotes``."""
    kinds = {f.kind for f in files}
    return next((k for k in ("book_ticker", "quotes") if k in kinds), None)


def _read_tardis_files(paths: list[str], **kw):
    """:func:`~lobfast.read_tardis` of the files that hold rows (Tardis publishes an empty
    file for a day without data); None when none does."""
    full = [p for p in paths if _core.head(p, 1)]
    return read_tardis(full, **kw) if full else None


def _tardis_span(task: dict, spec: Spec) -> tuple[BookSnapshots, Trades, Quotes, list[str]]:
    """A Tardis day's book, trades and quotes over the warm-up and the labels' reach.

    Tardis files hold one UTC day of receive time each, and an ``incremental_book_L2`` file
    starts with a snapshot of the book at midnight (Tardis' rule), so the book needs no file
    before the previous day's: the warm-up reads the previous day's file from its start,
    the labels' reach the next day's up to the horizon (plus a minute of receive time either
    side).  ``book_snapshot_N`` rows are self-contained and resampled to the grid
    (:func:`lobfast.reconstruct`).  Depth is read a file at a time, so a task holds one day's
    depth rows and the grid book from the warm-up's start on.  The reader parses a whole file
    even when only its first minutes are kept (the next day's, for the labels' reach)."""
    day = task["day"]
    by = {(d, kind): path for path, d, kind in task["tardis"]}
    start, end = day - spec.warmup - MARGIN, day + DAY + spec.reach + MARGIN
    used: list[str] = []

    def paths(kind: str) -> list[str]:
        out = [by[(d, kind)] for d in (day - DAY, day, day + DAY) if (d, kind) in by]
        used.extend(out)
        return out

    kind = task["book_kind"]
    if kind is None:
        book = reconstruct(DepthEvents.empty(), levels=spec.levels, every=spec.every)
    else:
        if (day, kind) not in by:
            here = sorted(k for d, k in by if d == day)
            folder = os.path.dirname(by[(day, here[0])])
            name = f"{task['venue']}_{kind}_{task['date']}_{task['symbol']}.csv.gz"
            raise lob_error(
                f"{os.path.join(folder, name)}: missing: the book of {task['venue']} {task['symbol']} comes from "
                f"its {kind} files, and {task['date']} has only {', '.join(here)}",
                os.path.join(folder, name),
            )
        if kind.startswith("book_snapshot_") and int(kind.rsplit("_", 1)[1]) < spec.levels:
            raise lob_error(
                f"{by[(day, kind)]}: {kind} holds {kind.rsplit('_', 1)[1]} levels per side, fewer than the store's "
                f"levels={spec.levels} (deeper levels are unknown): make the store with fewer levels",
                by[(day, kind)],
            )
        if kind == "incremental_book_L2":  # from the previous day's midnight snapshot, a file at a time
            builder, books = BookBuilder(spec.levels, every=spec.every), []
            for path in paths(kind):
                data = _read_tardis_files([path], end=end)
                if data is not None:
                    part = builder.feed(data)
                    books.append(part[int(np.searchsorted(part.ts, start)) :])  # the warm-up is enough
                del data
            book = _concat(BookSnapshots, [*books, builder.finish()])
        else:
            data = _read_tardis_files(paths(kind), start=start, end=end)
            book = reconstruct(DepthEvents.empty() if data is None else data, levels=spec.levels, every=spec.every)
    needs_trades = any(n in TRADE_COLUMNS for n in spec.features)
    tr = _read_tardis_files(paths("trades"), start=start if needs_trades else day - MARGIN, end=day + DAY + MARGIN)
    qkind = task["quote_kind"]
    qu = _read_tardis_files(paths(qkind), start=day - MARGIN, end=day + DAY + MARGIN) if qkind else None
    return book, tr if tr is not None else Trades.empty(), qu if qu is not None else Quotes.empty(), used


def _day_rows(ts: np.ndarray, day: int) -> slice:
    return slice(int(np.searchsorted(ts, day, "left")), int(np.searchsorted(ts, day + DAY, "left")))


def _day_sorted_rows(ts: np.ndarray, day: int) -> np.ndarray:
    return np.flatnonzero((ts >= day) & (ts < day + DAY))


def _label_frame(book: BookSnapshots | None, spec: Spec):
    """The spec's labels of ``book`` (None: of a two-row stand-in, for the column names of a
    day without book rows, such as a recording of trades only)."""
    data = book if book is not None else (np.ones(2), np.arange(2, dtype=np.int64))
    frames = []
    for n in spec.labels:
        what, h = re.fullmatch(r"(ret|smooth_mean|smooth)_(\w+)", n).groups()
        if what == "ret":
            frames.append(_labels.forward_return(data, int(h) if h.isdigit() else h))
        else:
            frames.append(_labels.smoothed(data, int(h), against="mean" if what == "smooth_mean" else "mid"))
    return _labels.combine(*frames)


def _warn_bookless(date: str, valid: np.ndarray, trades_ts: np.ndarray, quotes: int, day: int) -> None:
    """A day with market data but no valid book row is written, and says so: its depth
    never synced (no snapshot before or inside it, update ids that do not continue, or a
    recording without depth)."""
    if valid.any():
        return
    others = int(np.count_nonzero((trades_ts >= day) & (trades_ts < day + DAY)))
    others += quotes
    if len(valid) or others:
        warnings.warn(
            f"{date}: no valid book row in the day ({len(valid):,} grid rows, {others:,} trades and quotes): "
            "its depth never synced (no snapshot before or inside the day, update ids that do not continue, "
            "or no depth recorded)",
            LobWarning,
            stacklevel=2,
        )


def _make_partition(task: dict) -> tuple[dict[str, int], list[str]]:
    spec = Spec(
        **{**task["spec"], "features": tuple(task["spec"]["features"]), "labels": tuple(task["spec"]["labels"])}
    )
    day, root = task["day"], task["store"]
    meta = {
        "lobfast_version": __version__,
        "lobfast_params": json.dumps(spec.params(), sort_keys=True),
        "lobfast_params_hash": spec.hash,
        "venue": task["venue"],
        "symbol": task["symbol"],
        "date": task["date"],
    }

    def path(name: str) -> str:
        return os.path.join(_partition_dir(root, name, task["venue"], task["symbol"], task["date"]), "part-0.parquet")

    quotes = _DayWriter("quotes", path("quotes"), day, meta)
    try:
        if task.get("tardis"):
            book, trades, qu, used = _tardis_span(task, spec)
            quotes.add(qu.columns)
            del qu
        else:
            book, trades, used = _extended(task, spec, quotes)
        _hand_back()  # what the read freed: the tables below need room of their own
        cut = _day_rows(book.ts, day)
        _warn_bookless(task["date"], book.valid[cut], trades.ts, quotes.rows, day)
        rows = {}

        def write(name: str, cols: dict[str, np.ndarray]) -> None:  # each table once made, then let go
            _write_atomic(_arrow(name, cols, meta), path(name))
            rows[name] = len(cols["ts"])

        write("book", _book_columns(book[cut]))
        if spec.features:
            needs_trades = any(n in TRADE_COLUMNS for n in spec.features)
            flow = trades if needs_trades else None
            ff = _features(book, flow, spec=list(spec.features), threads=task.get("threads"))
            write("features", {"ts": ff.ts[cut], **{n: a[cut] for n, a in ff.items()}})
            del ff
        if spec.labels:
            lf = _label_frame(book, spec) if len(book) else _label_frame(None, spec).rows[:0]
            cols = {"ts": lf.ts[cut]}
            for n, a in lf.items():
                cols[n] = a[cut]
                cols[f"{n}_known_at"] = lf.known_at[n][cut]
            write("labels", cols)
            del lf, cols
        if spec.bars:
            bars = aggregate(book, trades, every=spec.bars)
            write(
                "bars",
                {"ts": bars.ts[_day_rows(bars.ts, day)], **{n: a[_day_rows(bars.ts, day)] for n, a in bars.items()}},
            )
            del bars
        del book
        write("trades", {k: v[_day_sorted_rows(trades.ts, day)] for k, v in trades.columns.items()})
        rows["quotes"] = quotes.commit(Quotes.empty().columns)
    except BaseException:
        quotes.abort()
        raise
    return rows, used


def _stamp(path: str) -> dict[str, Any]:
    try:
        st = os.stat(path)
        seen = _SEEN.get(path)
        if seen is not None and seen[0] == (st.st_size, st.st_mtime_ns):
            return dict(seen[2])
        return {"path": path, **source_stamp(path)}
    except OSError:
        return {"path": path, "size": -1, "mtime_ns": -1, "fingerprint": -1}


def _run_task(task: dict) -> dict[str, Any]:
    """One partition, in a worker: its tables written, and what the manifest records of it.
    A failure is reported in the result (with the error's text), never raised: the other
    partitions go on."""
    clock = time.perf_counter()
    out: dict[str, Any] = {k: task[k] for k in ("venue", "symbol", "date")}
    out.update(status="ok", error="", warnings="", rows={}, params_hash=task["params_hash"], version=__version__)
    planned = task["planned"]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out["rows"], used = _make_partition(task)
        out["warnings"] = "\n".join(dict.fromkeys([*task["damage"], *(str(w.message) for w in caught)]))
    except Exception as e:  # noqa: BLE001 - any failure of one partition is that partition's
        out.update(status="failed", error=f"{type(e).__name__}: {e}")
        used = []
    out["inputs"] = [_stamp(p) for p in dict.fromkeys(planned + used)]
    out["seconds"] = time.perf_counter() - clock
    out["host"] = socket.gethostname()
    return out


# ----------------------------------------------------------------------------- the manifest

_ROWS = [f"rows_{t}" for t in TABLES]


def _manifest_path(root: str) -> str:
    return os.path.join(root, "_manifest.parquet")


def _load_manifest(root: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    path = _manifest_path(root)
    if not os.path.exists(path):
        return {}
    pq = _require("pyarrow.parquet", "parquet")
    return {(r["venue"], r["symbol"], r["date"]): r for r in pq.read_table(path).to_pylist()}


def _manifest_table(rows: dict):
    pa = _require("pyarrow", "parquet")
    stamp = pa.struct(
        [("path", pa.string()), ("size", pa.int64()), ("mtime_ns", pa.int64()), ("fingerprint", pa.int64())]
    )
    schema = pa.schema(
        [
            ("venue", pa.string()),
            ("symbol", pa.string()),
            ("date", pa.string()),
            ("status", pa.string()),
            ("error", pa.string()),
            ("warnings", pa.string()),
            ("params_hash", pa.string()),
            ("version", pa.string()),
            *((r, pa.int64()) for r in _ROWS),
            ("seconds", pa.float64()),
            ("inputs", pa.list_(stamp)),
            ("host", pa.string()),
            ("finished", pa.timestamp("ns", tz="UTC")),
        ]
    )
    ordered = [rows[k] for k in sorted(rows)]
    return pa.Table.from_pylist(ordered, schema=schema)


def _manifest_row(r: dict[str, Any]) -> dict[str, Any]:
    row = {k: r[k] for k in ("venue", "symbol", "date", "status", "error", "warnings", "params_hash", "version")}
    row.update({f"rows_{t}": int(r["rows"].get(t, 0)) for t in TABLES})
    row.update(seconds=float(r["seconds"]), inputs=r["inputs"], host=r["host"], finished=time.time_ns())
    return row


def _write_manifest(root: str, rows: dict) -> None:
    _write_atomic(_manifest_table(rows), _manifest_path(root))


def _up_to_date(row, planned: list[str], spec: Spec, stamps: dict[str, dict]) -> bool:
    if row is None or row["status"] != "ok" or row["params_hash"] != spec.hash or row["version"] != __version__:
        return False
    recorded = {i["path"]: i for i in row["inputs"] or []}
    if not set(planned) <= set(recorded):
        return False  # a new file reaches into the day
    for p, old in recorded.items():
        if p not in stamps:
            stamps[p] = _stamp(p)
        if {k: old[k] for k in ("size", "mtime_ns", "fingerprint")} != {
            k: stamps[p][k] for k in ("size", "mtime_ns", "fingerprint")
        }:
            return False
    return True


# ----------------------------------------------------------------------------- the lock


class _Lock:
    """``STORE/.lock``: an exclusive flock held while a run writes the store, with the holder's
    pid, host and start time in the file.  The kernel drops the lock of a process that dies, so
    a lock file left by a dead run is simply taken over."""

    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, ".lock")
        self.fd = -1

    def __enter__(self) -> _Lock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                os.close(fd)
                raise
            try:
                holder = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
            except ValueError:
                holder = {}
            os.close(fd)
            raise lob_error(
                f"the store {os.path.dirname(self.path)} is being written by another run: pid "
                f"{holder.get('pid', '?')} on {holder.get('host', '?')} since {holder.get('since', '?')} holds "
                f"{self.path}; wait for it to finish (or stop it)",
                self.path,
            ) from None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        try:
            os.ftruncate(self.fd, 0)
        finally:
            os.close(self.fd)  # releases the flock
            self.fd = -1


def _differs(name: str, old: Any, new: Any) -> str:
    """How a parameter differs, briefly: lists of names by what one has that the other has not."""
    if isinstance(old, list) and isinstance(new, list) and old and new:
        more, less = [n for n in new if n not in old], [n for n in old if n not in new]
        what = [f"{more} asked, not in the store"] if more else []
        what += [f"{less} in the store, not asked"] if less else []
        return f"{name}: " + (", ".join(what) or "in another order")
    return f"{name}: {old!r} in the store, {new!r} asked"


def _check_params(root: str, spec: Spec, rebuild: bool) -> None:
    """Refuse a store made with other parameters (unless ``rebuild``: then empty it)."""
    path = os.path.join(root, "_store.json")
    old = None
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f).get("params")
    if old is not None and old != spec.params():
        if not rebuild:
            diff = [_differs(k, old.get(k), v) for k, v in spec.params().items() if old.get(k) != v]
            raise lob_error(
                f"the store {root} was written with other parameters ({'; '.join(diff)}): pass rebuild=True "
                "(--rebuild) to rewrite it from scratch, or choose another store",
                path,
            )
    if old is not None and old != spec.params() or (rebuild and old is not None):
        for t in TABLES:
            shutil.rmtree(os.path.join(root, t), ignore_errors=True)
        try:
            os.unlink(_manifest_path(root))
        except FileNotFoundError:
            pass
    if old != spec.params():
        body = json.dumps({"params": spec.params(), "params_hash": spec.hash, "lobfast_version": __version__}, indent=1)
        tmp = path + f".{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


def _clean_temp(root: str) -> None:
    """Temporary files of a run that was killed (only this run writes the store now)."""
    for dirpath, _, names in os.walk(root):
        for n in names:
            if n.startswith(".") and n.endswith(".tmp"):
                try:
                    os.unlink(os.path.join(dirpath, n))
                except OSError:
                    pass


def _drop_partition(root: str, venue: str, symbol: str, date: str) -> None:
    for t in TABLES:
        shutil.rmtree(_partition_dir(root, t, venue, symbol, date), ignore_errors=True)


# ----------------------------------------------------------------------------- running


@dataclasses.dataclass
class Summary:
    """What a :func:`process` run did: partitions written, already up to date and failed
    (``(partition, error)``), files that could not be placed in time, warnings of written
    partitions (``(partition, warning)``, such as a day without a valid book), rows per table."""

    store: str
    written: int = 0
    up_to_date: int = 0
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    warned: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    rows: dict[str, int] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.errors

    def __str__(self) -> str:
        rows = ", ".join(f"{n:,} {t}" for t, n in self.rows.items() if n)
        text = (
            f"{self.store}: {self.written} partition(s) written, {self.up_to_date} up to date, "
            f"{len(self.failed)} failed in {self.seconds:,.1f} s" + (f" ({rows} rows)" if rows else "")
        )
        for part, why in self.failed:
            text += f"\n  failed {part}: {why}"
        for why in self.errors:
            text += f"\n  not placed: {why}"
        for part, why in self.warned:
            text += f"\n  warning {part}: {why}"
        return text


def _cores() -> int:
    """The cores this process may run on (a container's or taskset's share, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


# what the forkserver imports once, so that each pool's workers start with it (instead of
# each worker importing lobfast, NumPy and pyarrow again: about a second of CPU per worker)
_PRELOAD = ["lobfast.store", "pyarrow.parquet"]


def _pool_context():
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)  # no effect once this process's forkserver runs
    return ctx


# glibc's mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_FROM = 32 << 20  # allocations from here on are mapped (glibc's largest dynamic threshold)
_TRIM_FROM = 1 << 30  # free memory at the heap's top kept up to this


@functools.cache
def _libc():
    try:
        import ctypes

        lib = ctypes.CDLL(None)
        lib.mallopt, lib.malloc_trim  # noqa: B018 - glibc only
        return lib
    except (OSError, AttributeError):
        return None


def _hand_back() -> None:
    """Hand the memory malloc holds free back to the OS (glibc; elsewhere nothing), with the
    large blocks lobfast keeps for reuse."""
    _core.release_kept()
    lib = _libc()
    if lib is not None:
        lib.malloc_trim(0)


def _keep_freed_memory(lib) -> None:
    """Let malloc reuse what a task frees instead of handing it back to the OS.  A task
    allocates and frees hundreds of MB of columns of a few MB each; handed back, every one
    faults its pages in again.  glibc does keep them by default (its mmap threshold grows
    with the blocks freed), but not once ``MALLOC_TRIM_THRESHOLD_`` is set, as Dask's nanny
    sets it (65536) for its workers: measured on store tasks, 6 to 10 times the page faults
    and 1.4 to 1.7 times the CPU time (benchmarks/PROFILE.md)."""
    lib.mallopt(_M_MMAP_THRESHOLD, _MMAP_FROM)
    lib.mallopt(_M_TRIM_THRESHOLD, _TRIM_FROM)


def _pool_worker() -> None:
    """The local pool's worker processes are lobfast's own: they keep freed memory for the
    next task (they end with the run)."""
    lib = _libc()
    if lib is not None:
        _keep_freed_memory(lib)


_TASKS_RUNNING = [0]  # tasks of this worker process keeping freed memory now (worker threads)
_TASKS_LOCK = threading.Lock()


def _run_task_dask(task: dict) -> dict[str, Any]:
    """:func:`_run_task` on a Dask worker.  Where the worker's environment sets malloc's
    thresholds (the nanny's ``MALLOC_TRIM_THRESHOLD_``), the worker keeps freed memory while
    its tasks run; when the last one ends, its settings are put back and the memory handed
    back to the OS, as the worker wants between tasks."""
    lib = _libc() if "MALLOC_TRIM_THRESHOLD_" in os.environ else None
    try:
        trim, mmap = (
            int(os.environ.get(k, d))
            for k, d in (("MALLOC_TRIM_THRESHOLD_", 128 << 10), ("MALLOC_MMAP_THRESHOLD_", 128 << 10))
        )
    except ValueError:
        lib = None
    if lib is None:
        return _run_task(task)
    with _TASKS_LOCK:
        _TASKS_RUNNING[0] += 1
        _keep_freed_memory(lib)
    try:
        return _run_task(task)
    finally:
        with _TASKS_LOCK:
            _TASKS_RUNNING[0] -= 1
            if not _TASKS_RUNNING[0]:
                lib.mallopt(_M_TRIM_THRESHOLD, trim)
                lib.mallopt(_M_MMAP_THRESHOLD, mmap)
                lib.malloc_trim(0)


def _execute(tasks: list[dict], workers: int, client) -> Iterator[dict]:
    """Results of the tasks as they finish: on the Dask cluster of ``client``, in a pool of
    ``workers`` processes, or here when there is one worker."""
    if client is not None:
        distributed = _require("distributed", "dask")
        futures = [
            client.submit(
                _run_task_dask,
                {**t, "threads": 1},  # a cluster runs a task per worker thread: one core each
                key=f"lobfast-{t['venue']}-{t['symbol']}-{t['date']}-{uuid.uuid4().hex[:8]}",
                pure=False,
            )
            for t in tasks
        ]
        try:
            for fut in distributed.as_completed(futures):
                try:
                    yield fut.result()
                except Exception as e:  # noqa: BLE001 - the task died with its worker(s)
                    t = tasks[futures.index(fut)]
                    yield _lost(t, f"{type(e).__name__}: {e}")
        finally:
            client.cancel([f for f in futures if not f.done()])
        return
    if workers <= 1 or len(tasks) <= 1:
        for t in tasks:
            yield _run_task(t)
        return
    n = min(workers, len(tasks))
    # with more tasks than processes, the processes keep the cores busy: a task's read that
    # also ran zstd worker threads would only take turns with the other processes (14 %
    # slower for 100 small partitions on 2 cores); with no more tasks than processes (a day
    # or two of one busy symbol), each reads on every core: the shorter ones end soon
    threads = max(1, cpu_threads(None) // n) if len(tasks) > n else None
    with concurrent.futures.ProcessPoolExecutor(n, mp_context=_pool_context(), initializer=_pool_worker) as ex:
        futures = {ex.submit(_run_task, {**t, "threads": threads}): t for t in tasks}
        try:
            for fut in concurrent.futures.as_completed(futures):
                try:
                    yield fut.result()
                except concurrent.futures.process.BrokenProcessPool as e:
                    yield _lost(
                        futures[fut],
                        f"the worker process died (killed, or out of memory; or the script that started the "
                        f"pool lacks `if __name__ == '__main__':`, which worker processes need): {e}",
                    )
        except BaseException:
            ex.shutdown(wait=False, cancel_futures=True)
            raise


def _lost(task: dict, why: str) -> dict:
    return {
        **{k: task[k] for k in ("venue", "symbol", "date", "params_hash")},
        "status": "failed", "error": why, "warnings": "", "rows": {}, "version": __version__,
        "inputs": [], "seconds": 0.0, "host": "",
    }  # fmt: skip


def _plan(groups: list[_Group], spec: Spec, root: str, manifest: dict, summary: Summary) -> list[dict]:
    tasks, stamps = [], {}
    for g in groups:
        for day in g.days():
            files = g.overlapping(day - spec.warmup - MARGIN, day + DAY + spec.reach + MARGIN)
            window = files
            if g.tardis:  # the files of the data types it reads (a day with others only fails, naming them)
                book_kind, quote_kind = _tardis_book_kind(g.files, spec.levels), _tardis_quote_kind(g.files)
                files = [f for f in files if f.kind in (book_kind, quote_kind, "trades")]
            if not window:
                continue
            key = (g.venue, g.symbol, _date(day))
            if _up_to_date(manifest.get(key), [f.path for f in files], spec, stamps):
                summary.up_to_date += 1
                continue
            tasks.append(
                {
                    "venue": g.venue,
                    "symbol": g.symbol,
                    "date": key[2],
                    "day": day,
                    "read_symbol": g.read_symbol,
                    "files": [] if g.tardis else [dataclasses.astuple(f)[:3] for f in g.files],
                    "tardis": [(f.path, f.first, f.kind) for f in window] if g.tardis else None,
                    "book_kind": book_kind if g.tardis else None,
                    "quote_kind": quote_kind if g.tardis else None,
                    "planned": [f.path for f in files],
                    "damage": [f.warning for f in files if f.warning],
                    "spec": dataclasses.asdict(spec),
                    "params_hash": spec.hash,
                    "store": root,
                    "bytes": sum(os.path.getsize(f.path) for f in files if os.path.exists(f.path)),
                }
            )
    tasks.sort(key=lambda t: -t["bytes"])  # the largest first: the pool ends together
    return tasks


def _run_once(srcs, root, spec, workers, client, quiet, closed_only) -> Summary:
    clock = time.perf_counter()
    summary = Summary(root)
    groups, summary.errors = _discover(srcs, closed_only)
    manifest = _load_manifest(root)
    tasks = _plan(groups, spec, root, manifest, summary)
    bar = None
    if tasks and not quiet:
        try:
            with warnings.catch_warnings():
                # in Jupyter without ipywidgets tqdm.auto warns and draws a text bar, which is wanted
                warnings.filterwarnings("ignore", message="IProgress not found")
                from tqdm.auto import tqdm

            bar = tqdm(total=len(tasks), unit="partition", desc="lobfast process", leave=False)
        except ImportError:
            bar = None
    last_write = time.monotonic()
    try:
        for r in _execute(tasks, workers, client):
            key = (r["venue"], r["symbol"], r["date"])
            manifest[key] = _manifest_row(r)
            if r["status"] == "ok":
                summary.written += 1
                for t, n in r["rows"].items():
                    summary.rows[t] = summary.rows.get(t, 0) + n
                summary.warned += [("/".join(key), w) for w in r["warnings"].split("\n") if w]
            else:
                summary.failed.append(("/".join(key), r["error"]))
                _drop_partition(root, *key)  # no stale rows of an earlier run stay visible
            if bar is not None:
                bar.update(1)
            if time.monotonic() - last_write > 2.0:
                _write_manifest(root, manifest)
                last_write = time.monotonic()
    finally:
        if bar is not None:
            bar.close()
        if tasks:
            _write_manifest(root, manifest)
    summary.seconds = time.perf_counter() - clock
    return summary


def connect(address: str):
    """A ``dask.distributed.Client`` for the scheduler at ``address`` (``tcp://host:port``)."""
    distributed = _require("distributed", "dask")
    return distributed.Client(address)


def process(
    src,
    out,
    *,
    levels: int = 10,
    every="100ms",
    features="default",
    labels=None,
    bars=None,
    workers: int | None = None,
    client=None,
    watch: bool = False,
    rebuild: bool = False,
    quiet: bool = False,
    poll: float = 1.0,
    watch_seconds: float | None = None,
    watch_iterations: int | None = None,
) -> Summary:
    """Turn recordings into the store at ``out`` (see :mod:`lobfast.store`); only what
    changed since the last run is redone.

    Parameters
    ----------
    src : a recorder tree (``OUT/<venue>/<symbol>/*.zst`` as ``lobfast-collect`` writes it),
        a folder of recordings, files or globs of raw Binance lines (venue and symbol then
        come from the data), Tardis CSVs or a folder of them (venue, symbol, data type and
        day from their names; see the module's notes), or a list of these.
    out : the store's folder (made when missing).
    levels, every : the grid book: levels per side, and the grid step (a duration dividing a day).
    features : ``"default"`` (lobfast's default spec without ``ofi_cum``), names (a list or
        ``"mid,ofi_10s,..."``), or None.
    labels : None, or names ``ret_<h>`` (``h`` rows or a span: ``ret_10``, ``ret_10s``),
        ``smooth_<k>``, ``smooth_mean_<k>``.
    bars : None, or a bar size (``"1s"``, dividing a day) for the ``bars`` table.
    workers : processes of the local pool (default: every core this process may use); 1 runs
        the tasks here, one after the other.  A script that starts the pool must do so under
        ``if __name__ == "__main__":`` (worker processes import it).
    client : a ``dask.distributed.Client``: the tasks run on its cluster instead (each worker
        must see ``src`` and ``out`` at the same paths).
    watch : follow a live recorder tree: every ``poll`` seconds, process the files the
        recorder has rotated (a newer file exists in the same folder), until Ctrl-C, or
        ``watch_seconds`` / ``watch_iterations`` when given.  Returns the last round's summary.
    rebuild : a store made with other parameters is refused unless this is True; then it is
        emptied and made again.
    quiet : no progress bar (tqdm shows one when installed).

    Returns
    -------
    Summary : partitions written, up to date, failed (with their errors); ``summary.ok``.
    A partition that fails is recorded as ``failed`` in the manifest with the error's text and
    redone by the next run; the others are written.

    Raises
    ------
    FileNotFoundError / PermissionError : a SRC that does not exist or cannot be read.
    LobError : a SRC file that is not a recording; a store made with other parameters; a
        store another run is writing (naming its pid and host).
    """
    spec = make_spec(levels, every, features, labels, bars)
    srcs = [os.fspath(src)] if isinstance(src, (str, os.PathLike)) else [os.fspath(s) for s in src]
    if not srcs:
        raise ValueError("no SRC given")
    for p in srcs:
        _check_src(p)
    if client is None:
        workers = _cores() if workers is None else int(workers)
        if workers < 1:
            raise ValueError(f"workers must be >= 1, not {workers!r}")
    root = os.path.abspath(os.fspath(out))
    os.makedirs(root, exist_ok=True)
    if not os.path.exists(os.path.join(root, "_store.json")) and set(os.listdir(root)) - {".lock"}:
        raise lob_error(
            f"{root} is not empty and holds no lobfast store (no _store.json): give --out a new or empty folder",
            root,
        )
    with _Lock(root):
        _check_params(root, spec, rebuild)
        _clean_temp(root)
        if not watch:
            return _run_once(srcs, root, spec, workers, client, quiet, closed_only=False)
        started, rounds = time.monotonic(), 0
        while True:
            summary = _run_once(srcs, root, spec, workers, client, True if quiet else quiet, closed_only=True)
            rounds += 1
            if summary.written or summary.failed:
                if not quiet:
                    print(summary, flush=True)
            if watch_iterations is not None and rounds >= watch_iterations:
                return summary
            if watch_seconds is not None and time.monotonic() - started >= watch_seconds:
                return summary
            time.sleep(poll)


# ----------------------------------------------------------------------------- reading back


class Store:
    """A store written by :func:`process` (open it with :func:`open_store`).

    ``partitions`` is the manifest (a pyarrow Table: venue, symbol, date, status, error, rows
    per table, inputs, ...); ``load`` gives Frames, ``scan`` a polars LazyFrame, ``to_dask`` a
    dask DataFrame.
    """

    def __init__(self, path) -> None:
        self.path = os.path.abspath(os.fspath(path))
        meta = os.path.join(self.path, "_store.json")
        if not os.path.isfile(meta):
            raise lob_error(
                f"{self.path} is not a lobfast store (it has no _store.json; make one with lobfast process)", self.path
            )
        with open(meta) as f:
            self.params: dict[str, Any] = json.load(f)["params"]

    def __repr__(self) -> str:
        return f"<lobfast Store {self.path}: {', '.join(self.tables)}>"

    @property
    def tables(self) -> list[str]:
        return [t for t in TABLES if os.path.isdir(os.path.join(self.path, t))]

    @property
    def partitions(self):
        """The manifest as a pyarrow Table, one row per partition."""
        pq = _require("pyarrow.parquet", "parquet")
        path = _manifest_path(self.path)
        if not os.path.exists(path):
            return _manifest_table({})
        return pq.read_table(path)

    def _dir(self, table: str) -> str:
        if table not in TABLES:
            raise ValueError(f"table must be one of {', '.join(TABLES)}, not {table!r}")
        d = os.path.join(self.path, table)
        if not os.path.isdir(d):
            raise lob_error(f"the store {self.path} has no {table!r} table (it has {', '.join(self.tables)})", d)
        return d

    def dataset(self, table: str):
        """The table as a ``pyarrow.dataset.Dataset`` (hive partitions venue, symbol, date)."""
        ds = _require("pyarrow.dataset", "parquet")
        pa = _require("pyarrow", "parquet")
        part = ds.partitioning(
            pa.schema([("venue", pa.string()), ("symbol", pa.string()), ("date", pa.string())]), flavor="hive"
        )
        return ds.dataset(self._dir(table), format="parquet", partitioning=part)

    def load(
        self,
        table: str,
        symbols=None,
        start=None,
        end=None,
        columns: Sequence[str] | None = None,
        venue: str | None = None,
    ):
        """Rows of ``table`` with ``start <= ts < end``, as a :class:`~lobfast.Frame` for one
        symbol (``symbols="BTCUSDT"``) or ``{symbol: Frame}`` for a list of them (None: all).
        ``columns`` selects columns (``ts`` always comes); booleans become 0/1 floats, as in
        any Frame; ``.to_pandas()`` converts."""
        ds = _require("pyarrow.dataset", "parquet")
        pa = _require("pyarrow", "parquet")
        d = self.dataset(table)
        flt = None

        def both(a, b):
            return b if a is None else a & b

        one = isinstance(symbols, str)
        wanted = [symbols] if one else (None if symbols is None else list(symbols))
        if wanted is not None:
            flt = both(flt, ds.field("symbol").isin(wanted))
        if venue is not None:
            flt = both(flt, ds.field("venue") == venue)
        t0 = None if start is None else to_ns(start, "start")
        t1 = None if end is None else to_ns(end, "end")
        if t0 is not None:
            flt = both(flt, ds.field("date") >= _date(t0 - t0 % DAY))
            flt = both(flt, ds.field("ts") >= pa.scalar(t0, pa.timestamp("ns", tz="UTC")))
        if t1 is not None:
            flt = both(flt, ds.field("date") <= _date(t1 - t1 % DAY))
            flt = both(flt, ds.field("ts") < pa.scalar(t1, pa.timestamp("ns", tz="UTC")))
        names = None if columns is None else ["ts", *[c for c in columns if c != "ts"], "venue", "symbol", "date"]
        got = d.to_table(columns=names, filter=flt)
        keys = sorted(set(zip(got["venue"].to_pylist(), got["symbol"].to_pylist()))) if got.num_rows else []
        syms = [s for _, s in keys]
        if len(set(syms)) != len(syms):
            raise ValueError(
                f"symbols {sorted({s for s in syms if syms.count(s) > 1})} are in several venues: pass venue="
            )
        out = {}
        for v, s in keys:
            part = got.filter((ds.field("venue") == v) & (ds.field("symbol") == s)) if len(keys) > 1 else got
            part = part.sort_by([("date", "ascending"), ("ts", "ascending")])
            ts = part["ts"].cast(pa.int64()).to_numpy()
            cols = {
                n: part[n].to_numpy(zero_copy_only=False)
                for n in part.column_names
                if n not in ("ts", "venue", "symbol", "date")
            }
            for n, a in cols.items():
                if a.dtype.kind == "M":
                    cols[n] = a.astype("datetime64[ns]").view(np.int64)
            out[s] = Frame(ts, cols)
        if one:
            if symbols not in out:
                empty = self.dataset(table).schema
                names = [
                    n
                    for n in empty.names
                    if n not in ("ts", "venue", "symbol", "date") and (columns is None or n in columns)
                ]
                return Frame(np.empty(0, np.int64), {n: np.empty(0) for n in names})
            return out[symbols]
        return out

    def scan(self, table: str):
        """The table as a polars LazyFrame over every partition (columns venue, symbol, date added)."""
        pl = _require("polars", "polars")
        return pl.scan_parquet(os.path.join(self._dir(table), "**", "*.parquet"), hive_partitioning=True)

    def to_dask(self, table: str):
        """The table as a dask DataFrame (one partition per file; venue, symbol, date columns)."""
        dd = _require("dask.dataframe", "dask")
        return dd.read_parquet(self._dir(table))


def open_store(path) -> Store:
    """Open a store written by :func:`process` / ``lobfast process``.

    Examples
    --------
    >>> store = lobfast.open_store("store")                                 # doctest: +SKIP
    >>> store.partitions.to_pandas()[["symbol", "date", "status"]]         # doctest: +SKIP
    >>> book = store.load("book", "BTCUSDT", "2024-08-08", "2024-08-09")    # doctest: +SKIP
    """
    return Store(path)
