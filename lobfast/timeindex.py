"""Time-sliced loading: any window of months of sorted data without reading the rest.

A :class:`TimeIndex` covers one file or many rotated ones.  Each file gets a sparse index,
built in C in one pass that also proves the file is sorted, and saved next to it as
``<file>.lfidx`` (see :mod:`lobfast.sidecar`); later processes load it in milliseconds.  An
entry every 64 KiB of text and at every zstd frame says where decompression can restart, so
a window costs one block (or frame) of scanning at each end plus its own rows: plain files
are read from the window's first byte, ``.zst`` files decompress only the frames the window
touches, and ``.gz`` files (which cannot restart mid-stream) are decompressed from the start
but no further than the window's end.  ``lobfast convert`` rewrites them as seekable frames.

CSV windows are parsed in C straight into preallocated columns, split over threads at index
entries; raw Binance line files give :class:`~lobfast.MarketData` through the same reader as
:func:`~lobfast.read_binance`, opening with the book as it stood at the window's start
(:mod:`lobfast.replay`; its book checkpoints are kept in the same sidecar).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
import time
import warnings
from typing import Any

import numpy as np

from . import _core, replay, sidecar
from .containers import MarketData
from .errors import LobError, LobWarning, lob_error
from .frame import empty_columns
from .reading import MAX_LINE, Paths, _market_data, _reader, check_max_line, expand_paths, open_part
from .sidecar import ENTRY
from .times import to_ns

UNITS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1, "auto": 0}
# column kinds (csrc/core/io/columns.h) and what each becomes
KINDS = {"int64": 1, "float64": 2, "time": 3, "bool": 4, "side": 5, "text": 6}
DTYPES = {
    "int64": np.int64,
    "float64": np.float64,
    "time": np.int64,
    "bool": np.int8,
    "side": np.int8,
    "text": np.int32,
}
BLOCK = 1 << 16  # text bytes between entries
HEAD_BYTES = 1 << 18  # text read to find the layout and sniff column kinds
SNIFF_ROWS = 1000
MIN_ROWS_PER_THREAD = 4_096
_END = np.iinfo(np.int64).max
_START = np.iinfo(np.int64).min

_RAW_LINE = re.compile(rb"^\d{1,19} [\[{]")
_RAW_LAYOUT = {"format": "raw", "key": [" ", 0, 1, 0, "receive time"], "names": [], "kinds": []}
_NAMES = {code: name for name, code in KINDS.items()}


# ---------------------------------------------------------------------------- layout


def _guess(rows: bytes, ncol: int, time_field: int, names: list[str], unit: int, max_rows: int) -> list[str]:
    """The kind of each column, guessed in C by the cell readers that will read it."""
    return [_NAMES[k] for k in _core.csv_kinds(rows, ",", time_field, names, unit, max_rows)]


def _numbers(cells: list[str]) -> list[bool]:
    """Which of the (stripped) cells of a header candidate hold a number (int64 or decimal)."""
    kinds = _guess(",".join(cells).encode(), len(cells), -1, [""] * len(cells), 0, 1)
    return [k in ("int64", "float64") and c != "" for k, c in zip(kinds, cells)]


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}.{k}")
    return out


def _layout(path: str, head: bytes, fmt: str, ts_col, unit: str, names) -> dict[str, Any]:
    """Format, time key, column names and kinds of a file, from its first lines."""
    lines = head.split(b"\n")
    if len(head) == HEAD_BYTES:
        lines = lines[:-1]  # cut by the head's end
    first = lines[0].rstrip(b"\r") if lines else b""
    if fmt == "auto":
        fmt = "raw" if _RAW_LINE.match(first) else "csv"
    if fmt == "raw":
        return _RAW_LAYOUT
    if fmt != "csv":
        raise ValueError(f"format must be 'auto', 'csv' or 'raw', not {fmt!r}")
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, not {unit!r}")
    cells = [c.strip().strip('"') for c in first.decode("utf-8", "replace").split(",")]
    numbers = _numbers(cells)
    if isinstance(ts_col, str):
        if ts_col not in cells:
            hint = " (the file has no header line: give ts_col as a position)" if any(numbers) else ""
            raise lob_error(f"{path}: no timestamp column {ts_col!r} in the header {cells}{hint}", path)
        field, header = cells.index(ts_col), True
    else:
        field = int(ts_col)
        if not 0 <= field < len(cells):
            raise lob_error(f"{path}: the timestamp column {field} is not one of the {len(cells)} columns", path)
        header = not numbers[field]
    col_names = list(names) if names is not None else cells if header else [str(i) for i in range(len(cells))]
    if len(col_names) != len(cells):
        raise ValueError(f"names has {len(col_names)} entries; the file has {len(cells)} columns")
    col_names = _unique(col_names)
    rows = b"\n".join(lines[int(header) :])
    kinds = _guess(rows, len(cells), field, col_names, UNITS[unit], SNIFF_ROWS)
    return {
        "format": "csv",
        "key": [",", field, UNITS[unit], int(header), col_names[field]],
        "names": col_names,
        "kinds": kinds,
    }


# ---------------------------------------------------------------------------- one file


def sidecar_path(path: str, index_dir: str | None = None) -> str:
    """Where the index of ``path`` lives: next to it, or in ``index_dir`` under a name
    that tells apart files of the same name in different directories."""
    if index_dir is None:
        return path + ".lfidx"
    tag = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:12]
    return os.path.join(index_dir, f"{os.path.basename(path)}.{tag}.lfidx")


def _check_against_core() -> None:
    """Fail at import if the C index's entry layout drifted from :data:`ENTRY`."""
    size, fields = _core.TimeIx.layout()
    mine = tuple((name, ENTRY.fields[name][1]) for name in ENTRY.names)
    if (size, fields) != (ENTRY.itemsize, mine) or ENTRY.fields["ts"][0] != np.dtype("<i8"):
        raise ImportError(f"lobfast._core.TimeIx entries {size} bytes {fields} differ from ENTRY {ENTRY.descr}")


_check_against_core()


_KEPT: dict[tuple[str, str], Any] = {}  # checkpoints whose sidecar could not be written


class _ReadThrough(Exception):
    """A gzip file, asked for without building its index: it is read from its start."""


class FileIndex:
    """The index of one file: its layout, summary and C index (entries of :data:`ENTRY`).
    Built, or loaded from its sidecar when that is intact and current.

    ``gzip=False`` does not build the index of a gzip file (it cannot restart inside, so the
    caller reads it through): the constructor raises :class:`_ReadThrough` instead."""

    def __init__(
        self,
        path,
        *,
        format="auto",
        ts_col="timestamp",
        unit="us",
        names=None,
        index_dir=None,
        block=BLOCK,
        max_line=MAX_LINE,
        gzip=True,
    ) -> None:
        self.path = os.fspath(path)
        self.max_line = check_max_line(max_line)
        if format == "auto":
            format = "raw" if _RAW_LINE.match(_core.head(self.path, 64)) else "csv"
        # what the caller asked for; the layout found from it is saved with the index
        params: dict[str, Any] = {"format": format, "block": int(block)}
        if format != "raw":
            params.update(ts_col=ts_col, unit=unit, names=None if names is None else list(names))
        stamp = sidecar.source_stamp(self.path)
        side = sidecar_path(self.path, index_dir)
        self._args = {"format": format, "ts_col": ts_col, "unit": unit, "names": names, "index_dir": index_dir}
        self._args.update(block=block, max_line=self.max_line)
        loaded, why = sidecar.load(side, stamp, params)
        if loaded is not None:
            header, entries = loaded
            self._header = header
            self.info, layout = header["info"], header["layout"]
            # adopted by C at the first use: with a window lookup, in the same call
            self._ix, self._entries = None, entries
            self.status = "loaded"
        else:
            if why.startswith("corrupt"):
                warnings.warn(f"{side}: {why}; rebuilding the index", LobWarning, stacklevel=3)
            if format == "raw":
                layout = _RAW_LAYOUT
            else:
                layout = _layout(self.path, _core.head(self.path, HEAD_BYTES), format, ts_col, unit, names)
            t = time.perf_counter()
            ix = _core.TimeIx.build(self.path, (*layout["key"], self.max_line), int(block), gzip=gzip)
            if ix is None:
                raise _ReadThrough(self.path)
            self._ix, self.info = ix, ix.info
            self.info["build_seconds"] = time.perf_counter() - t
            self.status = f"rebuilt ({why})" if why else "built"
            self._warn_damage(built=True)
            self._header = {"source": stamp, "params": params, "layout": layout, "info": self.info}
            try:
                sidecar.save(side, self._header, self.entries)
            except OSError as e:
                warnings.warn(
                    f"cannot write the index of {self.path} to {side} ({e.strerror or e}): it is kept in memory "
                    "for this process only; pass index_dir= to keep it elsewhere",
                    LobWarning,
                    stacklevel=3,
                )
                self.status += ", in memory"
        self.format, self.names, self.kinds = layout["format"], layout["names"], layout["kinds"]
        self.key = (*layout["key"], self.max_line)
        if loaded is not None:
            self._warn_damage(built=False)
        self.stamp, self.size = stamp, stamp["size"]
        self.side = side
        self.decompressed = 0  # text bytes decompressed by lookups (zstd and gzip)

    @property
    def ix(self) -> _core.TimeIx:
        """The C index (adopting the loaded entries on first use)."""
        if self._ix is None:
            self._ix = _core.TimeIx(self.path, self.key, self._entries, self.info)
        return self._ix

    @property
    def entries(self) -> np.ndarray:
        """The entries (:data:`ENTRY`: ts, line, row, d_off, c_off, d_at), read-only."""
        return self.ix.entries

    def text_before(self, t: int) -> int | None:
        """Text bytes up to the first index entry after time ``t`` (no fewer than the bytes
        before ``t``), from the entries alone; None when ``t`` lies past the last entry."""
        e = self._entries if self._ix is None else self._ix.entries
        i = int(np.searchsorted(e["ts"], t, side="right"))
        return int(e["d_off"][i]) if i < len(e) else None

    # -- book checkpoints of raw Binance files (lobfast.replay)
    def load_checkpoints(self, params: dict[str, Any]) -> sidecar.Checkpoints | None:
        """The checkpoints kept with this index when they were made with ``params``, else
        None (after a LobWarning when they were damaged)."""
        kept = _KEPT.get(self._kept_key(params))
        if kept is not None:
            return kept
        cps, why = sidecar.load_checkpoints(self.side, params)
        if cps is None and why.startswith("corrupt"):
            warnings.warn(f"{self.side}: {why}; rebuilding them", LobWarning, stacklevel=4)
        return cps

    def keep_checkpoints(self, cps: sidecar.Checkpoints) -> None:
        """Save checkpoints with the index (in this process's memory when the sidecar cannot
        be written)."""
        try:
            if sidecar.source_stamp(self.path) != self.stamp:
                raise OSError("the data file changed while its checkpoints were made")
            sidecar.save(self.side, self._header, self.entries, cps)
        except OSError as e:
            warnings.warn(
                f"cannot keep the book checkpoints of {self.path} in {self.side} ({e.strerror or e}): they are "
                "kept in memory for this process only",
                LobWarning,
                stacklevel=4,
            )
            _KEPT[self._kept_key(cps.params)] = cps

    def drop_checkpoints(self) -> None:
        """Forget damaged checkpoints: the sidecar keeps the index alone."""
        for key in [k for k in _KEPT if k[0] == self.side]:
            del _KEPT[key]
        try:
            sidecar.save(self.side, self._header, self.entries)
        except OSError:
            pass

    def _kept_key(self, params: dict[str, Any]) -> tuple[str, str]:
        return self.side, json.dumps(params, sort_keys=True)

    def _rebuilt(self) -> FileIndex:
        try:
            os.unlink(self.side)
        except OSError:
            pass
        return FileIndex(self.path, **self._args)

    def _replace(self, other: FileIndex) -> None:
        status = other.status
        self.__dict__.update(other.__dict__)
        self.status = "rebuilt (corrupt: the index did not fit the file)" if status.startswith("built") else status

    def current(self, deep: bool = True) -> FileIndex:
        """This index, or a new one when the file changed since it was made (a recorder
        appending to it): its size or mtime differ, or (``deep``) the CRC of its ends."""
        if deep:
            same = sidecar.source_stamp(self.path) == self.stamp
        else:
            st = os.stat(self.path)
            same = (st.st_size, st.st_mtime_ns) == (self.stamp["size"], self.stamp["mtime_ns"])
        return self if same else FileIndex(self.path, **self._args)

    def _warn_damage(self, built: bool) -> None:
        i = self.info
        if i["bad_frame"] >= 0:
            warnings.warn(
                f"{self.path}: {self.bad_frame_text()}; the data before it (up to {_fmt(i['last_ts'])}) is indexed",
                LobWarning,
                stacklevel=4,
            )
        if built and i["truncated"]:
            warnings.warn(
                f"{self.path}: the file ends inside a compressed block ({i['truncated']} bytes cannot be "
                f"decompressed); it is indexed up to its last complete line",
                LobWarning,
                stacklevel=4,
            )
        if built and i.get("partial", 0) and not i["truncated"]:
            warnings.warn(
                f"{self.path}: the last line (byte {i['d_size']}, {i['partial']} bytes) has no newline and "
                "its time does not parse: a line still being written; it is left out of the index",
                LobWarning,
                stacklevel=4,
            )
        if built and i.get("junk_offset", -1) >= 0:
            warnings.warn(
                f"{self.path}: the bytes from byte {i['junk_offset']} on are not compressed data (junk or zero "
                "padding after the end); they are ignored and everything before them is indexed",
                LobWarning,
                stacklevel=4,
            )

    def bad_frame_text(self) -> str:
        i = self.info
        return f"zstd frame {i['bad_frame']} at byte {i['bad_c_off']} is corrupt ({i['bad_msg']})"

    @property
    def rows(self) -> int:
        return int(self.info["rows"])

    @property
    def first_ts(self) -> int:
        return int(self.info["first_ts"])

    @property
    def last_ts(self) -> int:
        return int(self.info["last_ts"])

    @property
    def compression(self) -> str:
        return ("plain", "gzip", "zstd")[self.info["compression"]]

    def lookup(self, t0: int, t1: int) -> tuple[np.ndarray, tuple | None]:
        """``(ends, span)``: the positions (:data:`ENTRY`) of the first row at or after t0 and of
        the first at or after t1, and ``((c_lo, d_at, d_lo, d_hi), line0)`` to read the rows
        between them (None when there are none), in one call into the C index."""
        if self.info["bad_frame"] >= 0 and t1 > self.last_ts + 1:
            raise lob_error(
                f"{self.path}: {self.bad_frame_text()}: rows after {_fmt(self.last_ts)} cannot be read; "
                "windows before it can",
                self.path,
            )
        try:
            if self._ix is None:  # a loaded index: adopted and looked up in one call
                self._ix, (ends, looked, span) = _core.TimeIx.adopt(
                    self.path, self.key, self._entries, self.info, t0, t1
                )
            else:
                ends, looked, span = self._ix.window(t0, t1)
        except LobError as e:
            if self.status != "loaded":
                raise  # an index just built from the file: the file is at fault
            # a sidecar that passed every check but does not fit the file after all: the
            # sidecar is at fault, not the data; build the index from the file and retry
            warnings.warn(f"{self.side}: does not fit the file ({e}); rebuilding the index", LobWarning, stacklevel=4)
            self._replace(self._rebuilt())
            return self.lookup(t0, t1)
        self.decompressed += looked
        return ends, span

    def window(self, t0: int, t1: int) -> tuple[np.void, np.void]:
        """Positions (:data:`ENTRY`) of the first row at or after t0 and of the first at or after t1."""
        ends, _ = self.lookup(t0, t1)
        return ends[0], ends[1]

    def pieces(self, ends: np.ndarray, n: int) -> list[tuple[tuple, int, int]]:
        """[(span, line0, rows)] covering the rows between ``ends`` in about n pieces cut at entries."""
        return self.ix.pieces(ends, n)


def _fmt(ns: int) -> str:
    return str(np.datetime64(int(ns), "ns"))


_POOL: concurrent.futures.ThreadPoolExecutor | None = None


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="lobfast")
    return _POOL


def _files_of(paths: Paths) -> list[str]:
    """Files of a path, list, glob or directory (sidecars and hidden files left out)."""
    if isinstance(paths, (str, os.PathLike)) and os.path.isdir(paths):
        d = os.fspath(paths)
        files = sorted(
            os.path.join(d, f)
            for f in os.listdir(d)
            if not f.startswith(".") and not f.endswith(".lfidx") and os.path.isfile(os.path.join(d, f))
        )
        if not files:
            raise FileNotFoundError(f"no files in {d!r}")
        return files
    return [p for p in expand_paths(paths) if not p.endswith(".lfidx")]


# ---------------------------------------------------------------------------- the dataset


class TimeIndex:
    """Any time window of sorted data files, read without touching the rest.

    Parameters
    ----------
    paths : a file, a list, a glob or a directory of rotated files, plain, ``.zst`` or
        ``.gz``; read as one time-ordered dataset (files are ordered by their first time).
    ts_col : CSV: the time column, by header name or 0-based position.  Raw line files
        (``<receive ns> <message>``, recognised by their first line) use the line's first
        field.
    unit : CSV time unit: ``"s"``, ``"ms"``, ``"us"`` (Tardis' default), ``"ns"`` or
        ``"auto"`` (told apart by magnitude, e.g. data.binance.vision's ms/us).  Decimal
        fractions are kept down to the ns.
    format : ``"auto"``, ``"csv"`` or ``"raw"``.
    names : CSV column names for a file without a header line.
    dtypes : CSV kinds by column, overriding what the first 1,000 rows suggest:
        ``"int64"``, ``"float64"`` (empty cells NaN), ``"time"`` (int64 ns, in ``unit``;
        the time column and integer columns named ``*timestamp``), ``"bool"`` (int8 0/1),
        ``"side"`` (int8: buy/bid +1, sell/ask -1, unknown 0), ``"text"`` (int32 codes into
        :attr:`categories`).
    index_dir : where to keep the ``.lfidx`` sidecars (default: next to each file).  When it
        cannot be written the index is kept in memory, with a warning.  A sidecar that is
        damaged, stale, not a regular file or does not fit its file is rebuilt (with a
        :class:`~lobfast.LobWarning` saying why when it was damaged).
    max_line : the longest line accepted, in bytes (default 64 MiB): a longer one stops the
        build with a :class:`~lobfast.LobError` naming file, line and byte offset.

    A last line without a newline whose time does not parse is a line still being written:
    it is left out, with a warning.  Ctrl-C stops a build or read within a fraction of a
    second (KeyboardInterrupt).

    Examples
    --------
    >>> ti = lobfast.TimeIndex("book_snapshot_10/*.csv.zst")            # doctest: +SKIP
    >>> cols = ti.read("2024-08-08T10:00", "2024-08-08T10:30")          # doctest: +SKIP
    >>> cols["timestamp"][:2], cols["asks[0].price"][:2]                # doctest: +SKIP
    """

    def __init__(
        self,
        paths: Paths,
        *,
        ts_col: str | int = "timestamp",
        unit: str = "us",
        format: str = "auto",
        names: list[str] | None = None,
        dtypes: dict[str, str] | None = None,
        index_dir: str | None = None,
        block: int = BLOCK,
        max_line: int = MAX_LINE,
    ) -> None:
        if int(block) <= 0:
            raise ValueError(f"block must be > 0, not {block!r}")
        self.max_line = check_max_line(max_line)
        files = [
            FileIndex(
                p,
                format=format,
                ts_col=ts_col,
                unit=unit,
                names=names,
                index_dir=index_dir,
                block=block,
                max_line=max_line,
            )
            for p in _files_of(paths)
        ]
        kinds = {f.format for f in files}
        if len(kinds) > 1:
            raise lob_error(
                "the files mix CSV and raw line files: " + ", ".join(f"{f.path} ({f.format})" for f in files)
            )
        self.format = files[0].format
        if self.format == "csv":
            for f in files[1:]:
                if f.names != files[0].names:
                    raise lob_error(f"{f.path} has other columns than {files[0].path}: {f.names} vs {files[0].names}")
        files.sort(key=lambda f: (f.rows == 0, f.first_ts))
        if self.format == "csv":
            full = [f for f in files if f.rows]
            for a, b in zip(full, full[1:]):
                if b.first_ts < a.last_ts:
                    raise lob_error(
                        f"the files overlap in time: {a.path} ends at {_fmt(a.last_ts)}, after {b.path} "
                        f"starts at {_fmt(b.first_ts)}; rotated files of one dataset cannot"
                    )
        self.files = files
        self.columns: list[str] = list(files[0].names)
        self.dtypes: dict[str, str] = dict(zip(self.columns, files[0].kinds))
        for name, kind in (dtypes or {}).items():
            if name not in self.dtypes:
                raise KeyError(f"dtypes names {name!r}, which is not a column: {self.columns}")
            if kind not in KINDS:
                raise ValueError(f"dtype of {name!r} must be one of {', '.join(KINDS)}, not {kind!r}")
            self.dtypes[name] = kind
        if self.format == "csv":
            self.dtypes[self.ts_col] = "time"
        self.categories: dict[str, list[str]] = {n: [] for n, k in self.dtypes.items() if k == "text"}
        self.last_read: dict[str, Any] = {}
        if any(f.compression == "gzip" for f in files):
            warnings.warn(
                "gzip files cannot be read from the middle: each window decompresses them from the start "
                "(up to the window's end); `lobfast convert in.gz out.zst` makes them seekable",
                LobWarning,
                stacklevel=2,
            )

    # -- what it covers
    @property
    def ts_col(self) -> str:
        return self.files[0].key[4]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def start(self) -> int | None:
        """Time (ns) of the first row, or None when there is none."""
        full = [f.first_ts for f in self.files if f.rows]
        return min(full) if full else None

    @property
    def end(self) -> int | None:
        """Time (ns) of the last row, or None when there is none."""
        full = [f.last_ts for f in self.files if f.rows]
        return max(full) if full else None

    def __repr__(self) -> str:
        span = f"{_fmt(self.start)} .. {_fmt(self.end)}" if self.rows else "no rows"
        return f"<TimeIndex {self.format}, {len(self.files)} file(s), {self.rows:,} rows, {span}>"

    def info(self) -> list[dict[str, Any]]:
        """Per file: path, status (loaded / built / rebuilt (why)), compression, rows, times,
        entries, frames and sizes."""
        return [
            {
                "path": f.path,
                "status": f.status,
                "entries": len(f.entries),
                "size": f.size,
                **{k: v for k, v in f.info.items() if not k.startswith("bad_") or f.info["bad_frame"] >= 0},
                "compression": f.compression,
            }
            for f in self.files
        ]

    # -- windows
    def _bounds(self, start, end) -> tuple[int, int]:
        t0 = _START if start is None else to_ns(start)
        t1 = _END if end is None else to_ns(end)
        if t0 > t1:
            raise ValueError(f"start ({_fmt(t0)}) is after end ({_fmt(t1)})")
        return t0, t1

    @staticmethod
    def _overlaps(f: FileIndex, t0: int, t1: int) -> bool:
        return f.rows > 0 and t0 <= f.last_ts and f.first_ts < t1

    def _parts(self, t0: int, t1: int) -> list[tuple[FileIndex, np.ndarray, tuple]]:
        # never read through a stale index: a stat per file, and a CRC of the ends of the
        # files the window may touch
        self.files = [f.current(deep=self._overlaps(f, t0, t1)) for f in self.files]
        parts = []
        for f in self.files:
            if f.rows == 0 or t1 <= f.first_ts or (t0 > f.last_ts and f.info["bad_frame"] < 0):
                continue
            ends, span = f.lookup(t0, t1)
            if span is not None:
                parts.append((f, ends, span))
        return parts

    def read(self, start=None, end=None, columns: list[str] | None = None, *, symbol=None, on_error="raise"):
        """Rows with ``start <= time < end`` (int ns, ISO string, datetime64, Timestamp; None
        for open ends).

        CSV: ``{column: ndarray}`` in file order, the time column always included (int64
        ns); ``columns`` selects others.  Raw line files: :class:`~lobfast.MarketData`, as
        :func:`~lobfast.read_binance` with ``start``/``end`` would give (``symbol`` and
        ``on_error`` as there).  A window outside the data gives empty results.
        What the read cost is in :attr:`last_read`.
        """
        t0, t1 = self._bounds(start, end)
        if self.format == "raw" and columns is not None:
            raise TypeError("columns= applies to CSV files; a raw file gives MarketData")
        clock = time.perf_counter()
        for f in self.files:
            f.decompressed = 0
        parts = self._parts(t0, t1)
        out = (
            self._read_raw(parts, t0, t1, symbol, on_error) if self.format == "raw" else self._read_csv(parts, columns)
        )
        ends = [e for _, e, _ in parts]
        compressed = [e for f, e, _ in parts if f.compression != "plain"]
        self.last_read = {
            "files": len(parts),
            "rows": sum(int(e["row"][1] - e["row"][0]) for e in ends),
            "text_bytes": sum(int(e["d_off"][1] - e["d_off"][0]) for e in ends),
            # the window from its restart points, and the lookups that found its ends
            "decompressed_bytes": sum(int(e["d_off"][1] - e["d_at"][0]) for e in compressed)
            + sum(f.decompressed for f in self.files),
            "file_bytes": sum(f.size for f, _, _ in parts),
            "seconds": time.perf_counter() - clock,
        }
        return out

    def _read_raw(self, parts, t0: int, t1: int, symbol, on_error) -> MarketData:
        start, end = None if t0 == _START else t0, None if t1 == _END else t1
        r = _reader("binance", symbol, on_error, start, end, self.max_line, book=start is not None, threads=None)
        if start is not None:  # the window opens with its book (lobfast.replay)
            paths = [f.path for f in self.files]
            window = replay.Window(paths, self.files, t0, t1, symbol=symbol, on_error=on_error, max_line=self.max_line)
            opens = list(window.open_all(r))
        else:
            opens = [(f.path, span, line0) for f, _, (span, line0) in parts]
        try:
            for path, span, line0 in opens:
                open_part(r, path, span, line0)
                r.pump()
        finally:
            r.close()
        r.finish()
        stats = r.stats()
        if start is not None:
            replay.warn_unsynced(replay.window_stats(stats, t0, t1), t0, t1, stacklevel=4)
        return _market_data(r.take(), stats)

    def _read_csv(self, parts, columns) -> dict[str, np.ndarray]:
        names = self.columns if columns is None else list(columns)
        for n in names:
            if n not in self.dtypes:
                raise KeyError(f"no column {n!r}; the columns are {self.columns}")
        if self.ts_col not in names:
            names = [self.ts_col, *names]
        names = [n for n in self.columns if n in set(names)]  # file order, once each
        n = sum(int(e["row"][1] - e["row"][0]) for _, e, _ in parts)
        out = empty_columns(n, [(name, DTYPES[self.dtypes[name]]) for name in names])
        threads = max(1, min(os.cpu_count() or 1, n // MIN_ROWS_PER_THREAD))
        tasks, row = [], 0
        for f, ends, _ in parts:
            for span, line0, rows in f.pieces(ends, threads):
                tasks.append((f, span, line0, rows, row))
                row += rows
        fields = {name: i for i, name in enumerate(self.columns)}

        def run(task):
            f, span, line0, rows, at = task
            spec = [(fields[m], KINDS[self.dtypes[m]], m, out[m][at : at + rows]) for m in names]
            return task, _core.csv_columns(f.path, span, line0, f.key, rows, spec)

        results = list(_pool().map(run, tasks)) if len(tasks) > 1 else [run(t) for t in tasks]
        for (_, _, _, rows, at), values in results:
            for m, vals in zip(names, values):
                if vals is not None:
                    self._recode(m, out[m][at : at + rows], vals)
        return out

    def _recode(self, name: str, codes: np.ndarray, values: list[str]) -> None:
        """Codes of one piece (into its own values) -> codes into self.categories[name], which
        only grows, so codes stay comparable across reads."""
        cats = self.categories[name]
        if cats[: len(values)] == values:
            cats.extend(values[len(cats) :])
            return
        where = {v: i for i, v in enumerate(cats)}
        for v in values:
            if v not in where:
                where[v] = len(cats)
                cats.append(v)
        lut = np.array([where[v] for v in values], np.int32)
        np.take(lut, codes, out=codes)


def raw_index(path: str, *, max_line: int = MAX_LINE) -> FileIndex | None:
    """The index of a raw line file for a window of it, or None for a file read from its
    start: gzip (it cannot restart inside), or one whose index cannot be made (with a
    warning)."""
    try:
        return FileIndex(path, format="raw", max_line=max_line, gzip=False)
    except _ReadThrough:
        return None
    except LobError as e:
        warnings.warn(f"{path} has no usable time index ({e}); reading all of it", LobWarning, stacklevel=4)
        return None


def file_window(path: str, start, end, *, max_line: int = MAX_LINE) -> tuple[tuple | None, int] | None:
    """For :func:`~lobfast.read_binance`: ``(span, line0)`` of the part of a raw line file
    holding [start, end), found with one call into its index (built on first use); ``(None,
    0)`` to read all of it (a gzip file without an index: it cannot restart inside); None when
    no row is in it."""
    t0 = _START if start is None else to_ns(start)
    t1 = _END if end is None else to_ns(end)
    try:
        f = FileIndex(path, format="raw", max_line=max_line, gzip=False)
    except _ReadThrough:
        return None, 0
    if f.rows == 0 or t1 <= f.first_ts or t0 > f.last_ts:
        return None
    return f.lookup(t0, t1)[1]


__all__ = ["ENTRY", "FileIndex", "LobError", "TimeIndex", "file_window", "raw_index", "sidecar_path"]
