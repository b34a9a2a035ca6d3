"""Bars from the book and trades: time, event and volume buckets (C kernel)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from . import _core
from .containers import BookSnapshots, Quotes, Trades
from .frame import Frame, empty_columns
from .reading import cpu_threads
from .times import parse_duration, parse_horizon

COLUMNS = (
    "mid_open",
    "mid_high",
    "mid_low",
    "mid_close",
    "vwap",
    "volume",
    "buy_volume",
    "sell_volume",
    "trades",
    "updates",
)
_BY = ("time", "events", "volume")
_EMPTY_VWAP = ("nan", "mid")


def _every(by: str, every: Any) -> int | float:
    if by == "time":
        return parse_duration(every, "every")
    if isinstance(every, (bool, np.bool_)):
        raise TypeError(f"every must be a number for by={by!r}, not {every!r}")
    if by == "events":
        if not isinstance(every, (int, np.integer)):
            raise TypeError(f"every must be an int number of book rows for by='events', not {type(every).__name__}")
        if every <= 0:
            raise ValueError(f"every must be > 0 book rows for by='events', not {every}")
        return parse_horizon(every, "every")[0]
    if not isinstance(every, numbers.Real):
        raise TypeError(f"every must be a traded volume (float) for by='volume', not {type(every).__name__}")
    if not (math.isfinite(every) and every > 0):
        raise ValueError(f"every must be a finite volume > 0 for by='volume', not {every}")
    return float(every)


def aggregate(
    book_or_quotes: BookSnapshots | Quotes,
    trades: Trades | None = None,
    *,
    every: str | int | float | Any = "500ms",
    by: str = "time",
    empty_vwap: str = "nan",
    columns: list[str] | None = None,
    out: Frame | dict[str, np.ndarray] | None = None,
    threads: int | None = None,
) -> Frame:
    """Bars (OHLC of the mid, VWAP, volumes, counts) from the book or quotes and trades.

    Parameters
    ----------
    book_or_quotes : :class:`BookSnapshots` (mid = (bid_px[:, 0] + ask_px[:, 0]) / 2; rows
        with ``valid`` False give no mid) or :class:`Quotes` (mid = (bid_px + ask_px) / 2).
    trades : :class:`Trades` or None (``side`` +1 taker buy, -1 taker sell, 0 unknown).
    by : how rows are bucketed:

        - ``"time"``: clock buckets on multiples of ``every`` (a duration: ``"500ms"``, int ns,
          ``timedelta``...), from the bucket of the earliest time (book or trades) to that of
          the latest, empty buckets included. ``ts`` = bucket start.
        - ``"events"``: every ``every`` (int N > 0) book rows; ``ts`` = the bucket's first
          row's time. Trades go to the bucket whose ``[first row ts, next bucket's first row ts)``
          holds them; the last bucket takes every trade from its first row on. **Trades
          before the first book row are not counted.**
        - ``"volume"``: a bucket closes after the trade that makes its traded volume reach
          ``every`` (float V > 0; a trade is never split, so a bucket may exceed V, and the
          last bucket may hold less). ``ts`` = its first trade's time; book rows in
          ``[ts, next bucket's ts)`` supply its mids (the last bucket: every row from ``ts``
          on). Needs ``trades``. Book rows before the first trade are in no bucket but set
          the mid carried into the first one.
    empty_vwap : ``"nan"`` (default): VWAP of a bucket without traded volume is NaN;
        ``"mid"``: it is the bucket's ``mid_close``.
    columns : list of column names (default: all of them): compute only these, in this order
        after ``ts``.  Without ``mid_open``, ``mid_high`` and ``mid_low`` only each bucket's
        last mid is made: where buckets hold a few rows, from prices read in one pass with the
        times; where they hold many, the rows inside are skipped by a galloping search, never
        read.  ``columns=["mid_close", "vwap", "volume"]`` costs about half of the full bars.
        Each column equals the same column of the full result, bit for bit.
    out : dict ``{name: ndarray}`` or a :class:`Frame` an earlier call returned: the arrays
        to write the bars into, in place (``ts`` and every asked column: C-contiguous,
        writable, int64 for ``ts``, ``trades``, ``updates`` and float64 for the others, one
        row per bar; other arrays in it are left alone).  Reusing them saves the page faults
        of fresh memory, which can cost more than the bars.  Wrong dtype or layout
        (TypeError), length, unknown names or arrays sharing memory (ValueError) are refused
        naming the column.  Time bars check each row as they read it: when a bad row stops
        them (ValueError), the arrays may hold part of the bars.
    threads : time and event bars are split into ranges of buckets filled on this many
        threads (None: every CPU this process may use; fewer than 32,768 bars stay on one).
        The bars are those of ``threads=1``, bit for bit. Volume bars are filled in order.

    Returns
    -------
    Frame
        ``ts`` (int64 ns) and, in this order: ``mid_open, mid_high, mid_low, mid_close``
        (float64; open = first mid in the bucket, close = last), ``vwap`` (sum(price * qty)
        / sum(qty)), ``volume, buy_volume, sell_volume`` (float64; taker buys / sells; side
        0 counts in ``volume`` only), ``trades`` and ``updates`` (int64: trades and book
        rows in the bucket, valid or not); only ``columns`` when given.  With ``out``, the
        columns are its arrays themselves.

    Notes
    -----
    - A bucket without a mid of its own carries the previous one: open = high = low = close
      = the last book row's mid. A gap ends the carry: after a row with ``valid`` False (or
      a NaN mid, i.e. an empty side), mids are NaN until the next row with a mid, so a gap
      is never hidden. Buckets before the first book row have NaN mids.
    - Buckets without trades have zero volumes and counts.
    - Times must be sorted ascending (ties allowed); trade prices finite, sizes finite and
      >= 0, sides in {-1, 0, +1}; otherwise ValueError naming the input and row.
    - An empty book and no trades give an empty Frame with these columns. Inputs are read
      in place and never modified; the C loop runs without the GIL.

    Examples
    --------
    >>> import lobfast
    >>> md = lobfast.read_binance("tests/data/binance/usdm_btcusdt_20240808.gz")  # doctest: +SKIP
    >>> bars = lobfast.aggregate(md.quotes, md.trades, every="1s")  # doctest: +SKIP
    >>> bars.to_pandas()[["mid_close", "vwap", "volume"]].head()  # doctest: +SKIP
    """
    if by not in _BY:
        raise ValueError(f"by must be one of {_BY}, not {by!r}")
    if empty_vwap not in _EMPTY_VWAP:
        raise ValueError(f"empty_vwap must be 'nan' or 'mid', not {empty_vwap!r}")
    if isinstance(book_or_quotes, BookSnapshots):
        name, bid, ask, valid = "book", book_or_quotes.bid_px, book_or_quotes.ask_px, book_or_quotes.valid
    elif isinstance(book_or_quotes, Quotes):
        # (N, 1) views: the kernel reads column 0 of (N, L) level arrays
        name, bid, ask, valid = "quotes", book_or_quotes.bid_px[:, None], book_or_quotes.ask_px[:, None], None
    else:
        raise TypeError(f"book_or_quotes must be BookSnapshots or Quotes, not {type(book_or_quotes).__name__}")
    if trades is None:
        if by == "volume":
            raise ValueError("by='volume' needs trades: the buckets are cut by traded volume")
        trades = Trades.empty()
    elif not isinstance(trades, Trades):
        raise TypeError(f"trades must be Trades or None, not {type(trades).__name__}")
    step = _every(by, every)
    if columns is not None and (isinstance(columns, str) or not hasattr(columns, "__iter__")):
        raise TypeError(f"columns must be a list of column names, not {type(columns).__name__}")
    if out is None:
        dest: Any = empty_columns  # one block for all the columns, kept for reuse once freed
    elif isinstance(out, Frame):
        dest = {"ts": out.ts, **out.columns}
    elif isinstance(out, dict):
        dest = out
    else:
        raise ValueError(
            f"out= takes a dict {{name: ndarray}} or a Frame this function returned, not {type(out).__name__}"
        )
    cols = _core.aggregate(
        book_or_quotes.ts,
        bid,
        ask,
        valid,
        trades.ts,
        trades.price,
        trades.qty,
        trades.side,
        by=by,
        every=step,
        empty_vwap_mid=empty_vwap == "mid",
        book_name=name,
        columns=None if columns is None else list(columns),
        out=dest,
        threads=cpu_threads(threads),
    )
    ts = cols.pop("ts")
    return Frame(ts, cols)
