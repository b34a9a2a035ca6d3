"""Readers: recorded market data files -> MarketData / containers, parsed in C.

All readers take a file, a list of files or a glob, plain or ``.gz`` / ``.zst`` (recognised
by content), and parse them in C with the GIL released.  Memory grows with the rows
returned, not with the files: ``iter_binance`` reads in chunks with the sequence state
carried across chunk and file boundaries.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _core
from .containers import BookSnapshots, DepthEvents, MarketData, Quotes, Trades
from .errors import LobError, LobWarning, lob_error
from .reading import MAX_LINE, Paths, _market_data, _reader, expand_paths
from .replay import Window, warn_unsynced, window_stats
from .timeindex import file_window, raw_index
from .times import to_ns  # lobfast.readers.to_ns: the time arguments' reader, documented here


class _FileCheck:
    """Per-file checks between pumps: empty files, truncated tails, a last line being
    written, junk after the compressed data, mixed symbols."""

    def __init__(self, reader: _core.Reader, symbol, on_error: str) -> None:
        self.reader, self.symbol, self.on_error = reader, symbol, on_error
        self.before = reader.stats()

    def start(self, path: str) -> None:
        self.path = path
        self.before = self.reader.stats()

    def done(self) -> None:
        now = self.reader.stats()
        keys = ("lines", "truncated_files", "truncated_bytes", "partial_line_bytes", "partial_lines", "junk_files")
        delta = {k: now[k] - self.before[k] for k in keys}
        if delta["lines"] == 0 and delta["truncated_files"] == 0 and delta["partial_lines"] == 0:
            msg = f"{self.path}: the file is empty (no lines)"
            if self.on_error == "raise":
                raise lob_error(msg, self.path)
            warnings.warn(msg, LobWarning, stacklevel=4)
        if delta["truncated_files"]:
            warnings.warn(
                f"{self.path}: the compressed file is truncated: {delta['truncated_bytes']} bytes of an "
                f"incomplete last block could not be decompressed and {delta['partial_line_bytes']} bytes "
                "of an incomplete last line were dropped; everything before them was read",
                LobWarning,
                stacklevel=4,
            )
        elif delta["partial_lines"]:
            warnings.warn(
                f"{self.path}: the last line (byte {now['partial_line_offset']}, {delta['partial_line_bytes']} "
                "bytes) has no newline and does not parse: a line still being written; it was left out",
                LobWarning,
                stacklevel=4,
            )
        if delta["junk_files"]:
            warnings.warn(
                f"{self.path}: the bytes from byte {now['junk_offset']} on are not compressed data (junk or "
                "zero padding after the end); they were ignored and everything before them was read",
                LobWarning,
                stacklevel=4,
            )
        self.check_symbols(now)

    def check_symbols(self, stats: dict[str, Any]) -> None:
        syms = [s for s in str(stats.get("symbols", "")).split(",") if s]
        if self.symbol is None and len(syms) > 1:
            raise lob_error(
                f"{self.path}: the data holds several symbols ({', '.join(sorted(syms))}); choose one with symbol=...",
                self.path,
            )

    def check_found(self, stats: dict[str, Any], rows: int) -> None:
        """A symbol asked for that never appeared, while others did: a typo, not empty data."""
        syms = [s for s in str(stats.get("symbols", "")).split(",") if s]
        if self.symbol is not None and rows == 0 and len(syms) > 1:
            raise lob_error(
                f"symbol {self.symbol!r} is not in the data, which holds {', '.join(sorted(syms[1:]))}",
                getattr(self, "path", None),
            )


def _opens(r: _core.Reader, files: list[str], start, end, max_line: int = MAX_LINE, window: Window | None = None):
    """(path, span, line0) of what ``r`` reads of ``files`` (span None: all of the file).
    With a ``window`` (a Binance window keeping its book), what it says after restoring r to
    the last checkpoint before the window's start.  Else only the part of each file holding
    ``[start, end)`` when its time index can find it (the index is built on first use and
    kept next to the file; a gzip file, which cannot restart inside, is read through,
    keeping the window), or all of it; files with no line in the window are left out."""
    if window is not None:
        yield from window.open_all(r)
        return
    for path in files:
        if start is None and end is None:
            yield path, None, 0
            continue
        try:
            w = file_window(path, start, end, max_line=max_line)
        except LobError as e:
            warnings.warn(f"{path} has no usable time index ({e}); reading all of it", LobWarning, stacklevel=5)
            w = None, 0
        if w is not None:
            yield path, w[0], w[1]


def _open(r: _core.Reader, path: str, span, line0: int) -> None:
    if span is None:
        r.open(path)
    else:
        r.open(path, span=span, line0=line0)


def _binance_window(files: list[str], symbol, on_error: str, start, end, max_line: int, threads: int | None):
    """(reader, Window or None, t0, t1) for a Binance read: a window with a start keeps its book."""
    r = _reader("binance", symbol, on_error, start, end, max_line, book=start is not None, threads=threads)
    if start is None:
        return r, None, 0, 0
    t0, t1 = to_ns(start), (np.iinfo(np.int64).max if end is None else to_ns(end))
    index = [raw_index(p, max_line=max_line) for p in files]
    return r, Window(files, index, t0, t1, symbol=symbol, on_error=on_error, max_line=max_line), t0, t1


def prepare_windows(
    paths: Paths, *, symbol=None, on_error: str = "raise", max_line: int = MAX_LINE
) -> list[tuple[str, int | None]]:
    """Build now what a window of ``paths`` will need: each raw file's time index and its
    book checkpoints, kept in the ``.lfidx`` sidecars, so that the first
    ``read_binance(paths, start=...)`` costs what any later one does.

    The checkpoints are those such a read looks for: made with the same ``symbol``,
    ``on_error`` and ``max_line``, and with the files before each one in the order given
    (a file's book may come from them).  Returns ``(path, checkpoints)`` per file, None for a
    file read from its start (gzip).  ``lobfast index --checkpoints`` runs it."""
    files = expand_paths(paths)
    index = [raw_index(p, max_line=max_line) for p in files]
    end = int(np.iinfo(np.int64).max)
    w = Window(files, index, end, end, symbol=symbol, on_error=on_error, max_line=max_line)
    return [(p, None if fi is None else len(w.checkpoints(k))) for k, (p, fi) in enumerate(zip(files, index))]


def _read_all(
    r: _core.Reader,
    check: _FileCheck,
    files: list[str],
    start=None,
    end=None,
    max_line: int = MAX_LINE,
    window: Window | None = None,
) -> tuple[dict, dict[str, Any]]:
    """Every file as one stream, checked file by file: (tables, stats)."""
    try:
        for path, span, line0 in _opens(r, files, start, end, max_line, window):
            _open(r, path, span, line0)
            check.start(path)
            r.pump()
            check.done()
    finally:
        r.close()  # at once, also when stopped (Ctrl-C): no file stays open with the traceback
    r.finish()
    tables, stats = r.take(), r.stats()
    check.check_found(stats, sum(len(next(iter(t.values()))) for t in tables.values()))
    return tables, stats


def read_binance(
    paths: Paths,
    *,
    symbol: str | None = None,
    start=None,
    end=None,
    on_error: str = "raise",
    max_line: int = MAX_LINE,
    threads: int | None = None,
) -> MarketData:
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
        datetime).  The depth of a window with a ``start`` opens with the book as it stood
        at ``start``: ``SNAPSHOT | RESET`` rows stamped with the exchange time of the last
        update the book holds and the receive time of the window's first line, then the
        window's rows exactly as a full read gives them (sequence state, GAP rows and the
        counters in ``stats`` carry over; trades and quotes are the window's own).  The book
        is rebuilt by replaying the depth from the last book checkpoint before ``start``
        (kept with the file's time index; see :mod:`lobfast.replay`), so it costs at most
        a few minutes of data whatever the time of day.  When the files hold no book at
        ``start`` (no snapshot before it, or a gap since), the depth starts at the first
        snapshot inside the window, ``stats['unsynced_until']`` says when (receive time, ns;
        None when the book is known from the start) and a :class:`LobWarning` names the
        window.  Plain and zstd files are read through their :class:`~lobfast.TimeIndex`
        (built on first use and kept next to the file as ``.lfidx``): only the part from the
        checkpoint to ``end`` is read, and of a zstd file only the frames holding it are
        decompressed; gzip files, which cannot restart inside, are read from their start.
    on_error : ``"raise"`` (default) stops at the first malformed line with a
        :class:`LobError` naming file, line and byte offset; ``"skip"`` counts such lines in
        ``stats['bad_lines']`` (``stats['first_bad_line']`` says why) and goes on.  A line
        is malformed when its JSON is, and when a value is out of range: a price <= 0, a
        trade qty <= 0, a size < 0, a decimal that rounds to 0 or infinity, or a time
        outside 1970..2262.
    max_line : the longest line accepted, in bytes (default 64 MiB).  A longer one (a
        damaged file, or not a line file at all) stops the read with a :class:`LobError`
        naming file, line and byte offset, with either ``on_error``: memory stays bounded
        whatever a file holds.
    threads : zstd files with a seek table (lobfast's recorder and :func:`convert` write
        one) are decompressed and parsed on this many threads, frame by frame, and applied
        in order: the result, the errors and ``stats`` are those of ``threads=1``, which
        reads one line after the other.  Default None: all the CPUs this process may use.
        Plain, gzip and other zstd files are read by one thread.

    Damaged ends are read up to the damage, with a :class:`LobWarning`: a compressed file
    cut off (its incomplete last block and line are left out), junk or zero padding after
    the compressed data (ignored, as gzip does), and a last line without a newline that
    does not parse (a line still being written; one that parses is kept).

    Ctrl-C stops a long read within a fraction of a second (KeyboardInterrupt); the file is
    closed.

    Examples
    --------
    >>> import lobfast
    >>> from lobfast import datasets
    >>> md = lobfast.read_binance([datasets.path("spot_btcusdt_20240808"), datasets.path("spot_btcusdt_20240809")])
    >>> md.stats["gaps"], len(md.trades)
    (0, 19904)
    """
    files = expand_paths(paths)
    r, window, t0, t1 = _binance_window(files, symbol, on_error, start, end, max_line, threads)
    tables, stats = _read_all(r, _FileCheck(r, symbol, on_error), files, start, end, max_line, window)
    if window is not None:
        warn_unsynced(window_stats(stats, t0, t1), t0, t1, stacklevel=3)
    return _market_data(tables, stats)


def iter_binance(
    paths: Paths,
    *,
    chunk_rows: int = 1_000_000,
    symbol: str | None = None,
    start=None,
    end=None,
    on_error: str = "raise",
    max_line: int = MAX_LINE,
    threads: int | None = None,
) -> Iterator[MarketData]:
    """Read like :func:`read_binance`, yielding :class:`MarketData` chunks of about
    ``chunk_rows`` rows (all tables together).  Sequence state, pending snapshots and
    buffered diffs carry across chunk and file boundaries, so the concatenated chunks
    equal one ``read_binance`` of the same files.  Each chunk's ``stats`` are cumulative.
    A window with a ``start`` opens with its book as in :func:`read_binance`; what is
    replayed to rebuild it is never held, only the book.  With ``threads`` > 1 (see
    :func:`read_binance`) the workers go on decompressing and parsing the next frames (a
    few, in bounded memory) while the caller works on a chunk.
    """
    if int(chunk_rows) <= 0:
        raise ValueError(f"chunk_rows must be positive, not {chunk_rows!r}")
    files = expand_paths(paths)
    r, window, t0, t1 = _binance_window(files, symbol, on_error, start, end, max_line, threads)
    check = _FileCheck(r, symbol, on_error)
    rows = 0
    try:
        for path, span, line0 in _opens(r, files, start, end, max_line, window):
            _open(r, path, span, line0)
            check.start(path)
            while not r.pump(int(chunk_rows)):
                stats = r.stats()
                check.check_symbols(stats)
                if window is not None:
                    window_stats(stats, t0, t1)
                chunk = _market_data(r.take(), stats)
                rows += len(chunk.depth) + len(chunk.trades) + len(chunk.agg_trades) + len(chunk.quotes)
                yield chunk
            check.done()
    finally:
        r.close()  # also when stopped (Ctrl-C) or when the caller drops the iterator
    r.finish()
    last = _market_data(r.take(), r.stats())
    if window is not None:
        warn_unsynced(window_stats(last.stats, t0, t1), t0, t1, stacklevel=3)
    check.check_found(last.stats, rows + len(last.depth) + len(last.trades) + len(last.agg_trades) + len(last.quotes))
    yield last


# --------------------------------------------------------------------------- CSV archives


class _CsvFileCheck(_FileCheck):
    """:class:`_FileCheck` plus what a CSV file must satisfy: a header where the format
    requires one, and at least one readable row when ``on_error="skip"`` skipped lines
    (a whole file of bad lines means the wrong kind of file, not a few damaged rows)."""

    def __init__(self, reader: _core.Reader, symbol, on_error: str, *, header_required: bool) -> None:
        super().__init__(reader, symbol, on_error)
        self.header_required = header_required

    def done(self) -> None:
        before = self.before
        super().done()
        now = self.reader.stats()
        delta = {k: now[k] - before[k] for k in ("lines", "headers", "rows", "bad_lines")}
        if delta["lines"] == 0:
            return
        if delta["bad_lines"] and not delta["rows"]:
            why = now["header_error"] or now["last_error"]
            raise lob_error(f"{self.path}: no row of this file could be read ({delta['bad_lines']} bad lines): {why}")
        if self.header_required and not delta["headers"]:
            raise lob_error(
                f"{self.path}: the file has no Tardis CSV header line "
                "('exchange,symbol,timestamp,local_timestamp,...'), so its columns are unknown"
            )


def _read_csv(
    fmt: str, files: list[str], symbol, on_error: str, start, end, header_required: bool, max_line: int = MAX_LINE
):
    r = _reader(fmt, symbol, on_error, start, end, max_line)
    return _read_all(r, _CsvFileCheck(r, symbol, on_error, header_required=header_required), files)


def read_tardis(
    paths: Paths,
    *,
    symbol: str | None = None,
    start=None,
    end=None,
    on_error: str = "raise",
    stats: dict[str, Any] | None = None,
    max_line: int = MAX_LINE,
) -> DepthEvents | Trades | Quotes | BookSnapshots:
    """Read Tardis.dev CSV files (``.csv`` or ``.csv.gz``) into the container of their data type.

    The header line says what a file holds:

    ========================== ======================================================
    ``incremental_book_L2``    :class:`DepthEvents` (``update_id`` -1: Tardis has none)
    ``trades``                 :class:`Trades` (side ``buy`` +1, ``sell`` -1, ``unknown`` 0)
    ``quotes``/``book_ticker`` :class:`Quotes` (``update_id`` -1; empty cells are NaN)
    ``book_snapshot_N``        :class:`BookSnapshots` with N levels; ``ts`` is ``timestamp``;
                               empty levels are NaN prices and 0 sizes
    ========================== ======================================================

    ``ts`` is Tardis' ``timestamp`` (exchange time; when empty, ``local_timestamp``) and
    ``local_ts`` its ``local_timestamp`` (arrival time), microseconds turned into int64 ns.
    Trade ids that are not integers (some exchanges use text ids) become -1 and are counted
    in ``stats['non_integer_trade_ids']``.

    Depth follows Tardis' snapshot rules: rows before the first ``is_snapshot=true`` row are
    skipped (``stats['skipped_before_snapshot']``); the first snapshot row after a
    non-snapshot row gets ``RESET | SNAPSHOT`` and the rest of its run ``SNAPSHOT``; the last
    row of each run of rows sharing ``local_timestamp`` (one exchange message) gets
    ``END_OF_MESSAGE``.

    Parameters
    ----------
    paths : a file, a list of files, or a glob; plain, gzip or zstd.  All files must hold
        the same data type (and, for book snapshots, the same N); they are read as one
        stream in the order given.
    symbol : keep this symbol's rows (any case).  Without it the data must hold one symbol.
    start, end : keep rows whose ``local_timestamp`` is in ``[start, end)`` (int ns, ISO
        string, datetime); depth then starts at the first snapshot inside the window.
    on_error : ``"raise"`` (default) stops at the first malformed row with a
        :class:`LobError` naming file, line, byte offset, column and what was expected;
        ``"skip"`` counts such rows in ``stats['bad_lines']`` and goes on.  A file none of
        whose rows can be read, or without a header line, raises either way.  An empty file
        (Tardis publishes empty files for days without data) raises with ``"raise"`` and
        only warns with ``"skip"``.
    stats : a dict to receive the reader's counters (rows, other-symbol rows, rows outside
        the window, skipped rows, snapshots, bad lines, ...).
    max_line : the longest line accepted, in bytes, as in :func:`read_binance`.

    Returns
    -------
    DepthEvents, Trades, Quotes or BookSnapshots

    Examples
    --------
    >>> import gzip, os, tempfile, lobfast
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "binance_trades_2024-08-08_BTCUSDT.csv.gz")
    ...     with gzip.open(path, "wt") as f:
    ...         _ = f.write(
    ...             "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\\n"
    ...             "binance,BTCUSDT,1723161256322000,1723161256322871,5266583935,buy,61800.30,0.006\\n"
    ...             "binance,BTCUSDT,1723161256344000,1723161256344902,5266583936,sell,61800.20,0.199\\n"
    ...         )
    ...     trades = lobfast.read_tardis(path)
    >>> trades.price, trades.side
    (array([61800.3, 61800.2]), array([ 1, -1], dtype=int8))
    """
    files = expand_paths(paths)
    tables, st = _read_csv("tardis", files, symbol, on_error, start, end, header_required=True, max_line=max_line)
    if stats is not None:
        stats.update(st)
    kind = st["data_type"]
    if kind == "incremental_book_L2":
        return DepthEvents(**tables["depth"])
    if kind == "trades":
        return Trades(**tables["trades"])
    if kind == "quotes":
        return Quotes(**tables["quotes"])
    if kind.startswith("book_snapshot_"):
        return BookSnapshots(**tables["book"])
    raise lob_error(f"no Tardis data in {', '.join(files)}: every file is empty, so the data type is unknown")


def read_binance_vision(
    paths: Paths, *, on_error: str = "raise", stats: dict[str, Any] | None = None, max_line: int = MAX_LINE
) -> Trades | Quotes:
    """Read data.binance.vision CSV files: trades and aggTrades -> :class:`Trades`,
    USD-M bookTicker -> :class:`Quotes`.

    Recognised layouts (a header is optional; without one the row's shape decides):
    spot ``trades`` (``id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch``), spot
    ``aggTrades`` (``aggId,price,qty,firstId,lastId,time,isBuyerMaker,isBestMatch``), USD-M
    ``trades`` (``id,price,qty,quote_qty,time,is_buyer_maker``), USD-M ``aggTrades``
    (``agg_trade_id,...,transact_time,is_buyer_maker``) and USD-M ``bookTicker``
    (``update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time``).
    Times in ms or µs (spot from 2025) are told apart by magnitude; booleans may be
    ``True``/``False`` or ``true``/``false``.

    Trades: ``ts`` = ``local_ts`` = the trade time (the archive has no receive time);
    ``side`` = -1 when the buyer was the maker (the taker sold), else +1; ``trade_id`` is the
    trade id or, for aggTrades, the aggregate id.  bookTicker: ``ts`` = ``transaction_time``,
    ``local_ts`` = ``event_time``, ``update_id`` = ``update_id``; its rows are sometimes out
    of order in the archive, so they are sorted (stably) by ``(event_time, update_id)`` when
    they are not already (``stats['out_of_order_rows']`` counts the breaks).

    Parameters
    ----------
    paths : a file, a list of files, or a glob: ``.csv``, gzip or zstd.  The archive's
        ``.zip`` files must be extracted first.  All files must have the same layout.
    on_error : ``"raise"`` (default) or ``"skip"``, as in :func:`read_tardis`.
    stats : a dict to receive the reader's counters (``data_type``, ``market``, rows, ...).
    max_line : the longest line accepted, in bytes, as in :func:`read_binance`.

    Returns
    -------
    Trades or Quotes

    Examples
    --------
    >>> import os, tempfile, lobfast
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "BTCUSDT-trades-2025-01-01.csv")
    ...     with open(path, "w") as f:
    ...         _ = f.write(
    ...             "4346437545,93576.00000000,0.00014000,13.10064000,1735689600010866,True,True\\n"
    ...             "4346437546,93576.01000000,0.00300000,280.72803000,1735689600016342,False,True\\n"
    ...         )
    ...     trades = lobfast.read_binance_vision(path)
    >>> trades.side, trades.ts.view("datetime64[ns]")[0]
    (array([-1,  1], dtype=int8), np.datetime64('2025-01-01T00:00:00.010866000'))
    """
    files = expand_paths(paths)
    tables, st = _read_csv("vision", files, None, on_error, None, None, header_required=False, max_line=max_line)
    kind = st["data_type"]
    if kind == "bookTicker":
        q = tables["quotes"]
        lt, uid = q["local_ts"], q["update_id"]
        breaks = (lt[1:] < lt[:-1]) | ((lt[1:] == lt[:-1]) & (uid[1:] < uid[:-1]))
        st["out_of_order_rows"] = int(np.count_nonzero(breaks))
        if st["out_of_order_rows"]:
            order = np.lexsort((uid, lt))  # stable: equal keys keep the file's order
            q = {k: v[order] for k, v in q.items()}
        out: Trades | Quotes = Quotes(**q)
    elif kind in ("trades", "aggTrades"):
        out = Trades(**tables["trades"])
    else:
        raise lob_error(f"no data.binance.vision data in {', '.join(files)}: every file is empty")
    if stats is not None:
        stats.update(st)
    return out
