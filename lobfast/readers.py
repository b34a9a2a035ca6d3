"""Readers: recorded market data files -> MarketData / containers, parsed in C.

All readers take a file, a list of files or a glob, plain or ``.gz`` / ``.zst`` (recognised
by content), and parse them in C with the GIL released.  Memory grows with the rows
returned, not with the files: ``iter_binance`` reads in chunks with the sequence state
carried across chunk and file boundaries.
"""

from __future__ import annotations

import glob as _glob
import os
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Union

import numpy as np

from . import _core
from .containers import DepthEvents, MarketData, Quotes, Trades

LobError = _core.LobError
PathLike = Union[str, "os.PathLike[str]"]
Paths = Union[PathLike, Sequence[PathLike]]


class LobWarning(UserWarning):
    """Data was lost or looks suspicious, but reading went on (e.g. a truncated file)."""


def to_ns(t: Any) -> int:
    """A time as int64 ns since the epoch: int (ns), str (ISO 8601, naive = UTC),
    ``datetime``, ``numpy.datetime64`` or ``pandas.Timestamp``."""
    if isinstance(t, (int, np.integer)) and not isinstance(t, bool):
        return int(t)
    if hasattr(t, "tzinfo") and t.tzinfo is not None:  # aware datetime / Timestamp
        t = t.astimezone(__import__("datetime").timezone.utc).replace(tzinfo=None)
    try:
        return int(np.datetime64(t, "ns").astype(np.int64))
    except (ValueError, TypeError) as e:
        raise ValueError(f"cannot read {t!r} as a time (int ns, ISO string, datetime, datetime64)") from e


def expand_paths(paths: Paths) -> list[str]:
    """Files named by ``paths``: one path, a list, or glob patterns (sorted matches)."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise ValueError("no paths given")
    out: list[str] = []
    for p in items:
        p = os.fspath(p)
        if any(ch in p for ch in "*?["):
            matches = sorted(_glob.glob(p))
            if not matches:
                raise FileNotFoundError(f"no files match {p!r}")
            out.extend(matches)
        else:
            out.append(p)
    for p in out:
        if os.path.isdir(p):
            raise IsADirectoryError(f"{p!r} is a directory; pass a file or a glob such as '{p}/*.gz'")
        if not os.path.exists(p):
            raise FileNotFoundError(f"no such file: {p!r}")
    return out


def _reader(fmt: str, symbol, on_error: str, start, end) -> _core.Reader:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    kw: dict[str, Any] = {"symbol": symbol, "on_error": on_error}
    if start is not None:
        kw["start"] = to_ns(start)
    if end is not None:
        kw["end"] = to_ns(end)
    return _core.Reader(fmt, **kw)


class _FileCheck:
    """Per-file checks between pumps: empty files, truncated tails, mixed symbols."""

    def __init__(self, reader: _core.Reader, symbol, on_error: str) -> None:
        self.reader, self.symbol, self.on_error = reader, symbol, on_error
        self.before = reader.stats()

    def start(self, path: str) -> None:
        self.path = path
        self.before = self.reader.stats()

    def done(self) -> None:
        now = self.reader.stats()
        delta = {k: now[k] - self.before[k] for k in ("lines", "truncated_files", "truncated_bytes", "partial_line_bytes")}
        if delta["lines"] == 0 and delta["truncated_files"] == 0:
            msg = f"{self.path}: the file is empty (no lines)"
            if self.on_error == "raise":
                raise LobError(msg)
            warnings.warn(msg, LobWarning, stacklevel=4)
        if delta["truncated_files"]:
            warnings.warn(
                f"{self.path}: the compressed file is truncated: {delta['truncated_bytes']} bytes of an "
                f"incomplete last block could not be decompressed and {delta['partial_line_bytes']} bytes "
                "of an incomplete last line were dropped; everything before them was read",
                LobWarning,
                stacklevel=4,
            )
        self.check_symbols(now)

    def check_symbols(self, stats: dict[str, Any]) -> None:
        syms = [s for s in str(stats.get("symbols", "")).split(",") if s]
        if self.symbol is None and len(syms) > 1:
            raise LobError(
                f"{self.path}: the data holds several symbols ({', '.join(sorted(syms))}); "
                "choose one with symbol=..."
            )


def _market_data(tables: dict[str, dict[str, np.ndarray]], stats: dict[str, Any]) -> MarketData:
    return MarketData(
        depth=DepthEvents(**tables["depth"]),
        trades=Trades(**tables["trades"]),
        agg_trades=Trades(**tables["agg_trades"]),
        quotes=Quotes(**tables["quotes"]),
        stats=stats,
    )


def read_binance(paths: Paths, *, symbol: str | None = None, start=None, end=None, on_error: str = "raise") -> MarketData:
    """Read Binance spot or USD-M raw recordings into :class:`MarketData`.

    Each line is ``<local receive time ns> <message>`` (lobfast's and hftbacktest's
    recorder format); messages are diff depth (any speed), trade, aggTrade, bookTicker,
    REST depth snapshots and ``{"lobfast": ...}`` collector events.  Anything else is
    counted in ``stats['unknown_messages']`` and ignored.

    Depth follows Binance's local-order-book rules: diffs are buffered until a snapshot
    bridges them; stale diffs are dropped; continuity is checked (spot ``U == prev u + 1``,
    USD-M ``pu == prev u``); a break adds a ``GAP`` row and waits for the next snapshot.
    Times: ``ts`` is exchange time (USD-M ``T``, else ``E``; trades ``T``; where a message
    has none, the receive time), ``local_ts`` the receive time, both int64 ns.

    Parameters
    ----------
    paths : a file, a list of files, or a glob; plain, gzip or zstd.  Files are one stream,
        in the order given, so a day split over several files reads without a gap.
    symbol : keep this symbol's messages.  Without it the data must hold one symbol.
    start, end : keep messages *received* in ``[start, end)`` (int ns, ISO string,
        datetime); depth then needs a snapshot inside the window.
    on_error : ``"raise"`` (default) stops at the first malformed line with a
        :class:`LobError` naming file, line and byte offset; ``"skip"`` counts such lines in
        ``stats['bad_lines']`` (``stats['first_bad_line']`` says why) and goes on.

    Examples
    --------
    >>> import lobfast
    >>> md = lobfast.read_binance("tests/data/binance/spot_btcusdt_2024080*.gz")
    >>> md.stats["gaps"], len(md.trades)
    (0, 19904)
    """
    files = expand_paths(paths)
    r = _reader("binance", symbol, on_error, start, end)
    check = _FileCheck(r, symbol, on_error)
    for path in files:
        check.start(path)
        r.open(path)
        r.pump()
        check.done()
    r.finish()
    return _market_data(r.take(), r.stats())


def iter_binance(
    paths: Paths,
    *,
    chunk_rows: int = 1_000_000,
    symbol: str | None = None,
    start=None,
    end=None,
    on_error: str = "raise",
) -> Iterator[MarketData]:
    """Read like :func:`read_binance`, yielding :class:`MarketData` chunks of about
    ``chunk_rows`` rows (all tables together).  Sequence state, pending snapshots and
    buffered diffs carry across chunk and file boundaries, so the concatenated chunks
    equal one ``read_binance`` of the same files.  Each chunk's ``stats`` are cumulative.
    """
    if int(chunk_rows) <= 0:
        raise ValueError(f"chunk_rows must be positive, not {chunk_rows!r}")
    files = expand_paths(paths)
    r = _reader("binance", symbol, on_error, start, end)
    check = _FileCheck(r, symbol, on_error)
    for path in files:
        check.start(path)
        r.open(path)
        while not r.pump(int(chunk_rows)):
            stats = r.stats()
            check.check_symbols(stats)
            yield _market_data(r.take(), stats)
        check.done()
    r.finish()
    yield _market_data(r.take(), r.stats())
