"""Level-2 books rebuilt from DepthEvents by the C core: reconstruct, BookBuilder, book_at,
check_against_quotes.

The book follows the rows' flags: RESET clears it (a snapshot follows), GAP makes it
unknown until the next RESET, END_OF_MESSAGE marks where it is consistent.  Rows come out
either one per exchange message or on a time grid, with ``valid`` False wherever the book
cannot be trusted: before the first RESET, after a GAP, inside a message (a snapshot cut
before its END_OF_MESSAGE), one-sided (a side without levels), crossed, stale, and grid
rows after the last message when the next one reveals a GAP (the lost updates happened
somewhere in between).  A row is valid only when none of these holds.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from . import _core
from .containers import BookSnapshots, DepthEvents, MarketData, Quotes
from .flags import Flags
from .readers import to_ns

_UNITS = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "min": 60 * 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
    "d": 86400 * 10**9,
}


# the longest duration: 2^62 ns (146 years), so a time plus a duration stays in int64
_MAX_DURATION = 2**62
# numpy.timedelta64 units with a fixed length, in ns (years and months have none)
_TD64_UNITS = {
    "W": Fraction(7 * 86400 * 10**9),
    "D": Fraction(86400 * 10**9),
    "h": Fraction(3600 * 10**9),
    "m": Fraction(60 * 10**9),
    "s": Fraction(10**9),
    "ms": Fraction(10**6),
    "us": Fraction(10**3),
    "ns": Fraction(1),
    "ps": Fraction(1, 10**3),
    "fs": Fraction(1, 10**6),
    "as": Fraction(1, 10**9),
}


def parse_duration(value: Any, name: str = "every") -> int:
    """A duration as int ns: an int (ns), ``"100ms"``, ``"1.5s"``, ``"5min"``, ``"250us"``,
    ``numpy.timedelta64`` or ``datetime.timedelta``.

    Computed exactly (no floats); it must be a positive whole number of nanoseconds of at
    most 2^62 (146 years), else ValueError naming ``name`` and the value.
    """
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a duration, not {value!r}")
    if isinstance(value, np.timedelta64):  # before np.integer: timedelta64 subclasses it
        if np.isnat(value):
            raise ValueError(f"{name}={value!r} is NaT (a missing duration)")
        unit, count = np.datetime_data(value.dtype)
        if unit not in _TD64_UNITS:
            raise ValueError(f"{name}={value!r} has no fixed length in ns (unit {unit!r})")
        ns = int(value.astype(np.int64)) * count * _TD64_UNITS[unit]
    elif isinstance(value, (int, np.integer)):
        ns = int(value)
    elif isinstance(value, _dt.timedelta):
        ns = (value.days * 86400 + value.seconds) * 10**9 + value.microseconds * 1000
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|µs|ms|s|min|m|h|d)\s*", value)
        if m is None:
            raise ValueError(f"{name}={value!r} is not a duration such as '100ms', '1s', '5min' or an int of ns")
        ns = Fraction(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(f"{name} must be a duration (str, int ns, timedelta), not {type(value).__name__}")
    if ns <= 0:
        raise ValueError(f"{name} must be a positive duration, not {value!r}")
    if ns > _MAX_DURATION:
        raise ValueError(f"{name}={value!r} is longer than 2^62 ns (146 years)")
    if isinstance(ns, Fraction):
        if ns.denominator != 1:
            raise ValueError(f"{name}={value!r} is not a whole number of nanoseconds")
        ns = ns.numerator
    return int(ns)


def parse_horizon(value: Any, name: str = "horizon", *, allow_zero: bool = False) -> tuple[int, int]:
    """``(rows, ns)``, one of them 0: an int counts rows, anything else is a duration
    (:func:`parse_duration`). Rows must be positive, or non-negative with ``allow_zero``,
    and at most 2^62."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a number of rows or a duration, not {value!r}")
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.timedelta64):
        if value < 0 or (value == 0 and not allow_zero):
            least = "a non-negative number of rows" if allow_zero else "a positive number of rows: at least 1 row"
            raise ValueError(f"{name} must be {least}, not {value}")
        if value > _MAX_DURATION:
            raise ValueError(f"{name}={value!r} rows is more than 2^62")
        return int(value), 0
    if not isinstance(value, (str, np.timedelta64, _dt.timedelta)):
        raise ValueError(
            f"{name} must be a number of rows (int) or a duration (str, timedelta), not {type(value).__name__}"
        )
    return 0, parse_duration(value, name)


def _concat(parts: list[BookSnapshots]) -> BookSnapshots:
    parts = [p for p in parts if len(p)] or parts[:1]
    if len(parts) == 1:
        return parts[0]
    return BookSnapshots(**{k: np.concatenate([p.columns[k] for p in parts]) for k in parts[0].columns})


class BookBuilder:
    """A Level-2 book fed DepthEvents chunk by chunk, in bounded memory.

    Parameters
    ----------
    levels : levels per side in each output row (level 1 = best).
    every : ``None`` for one row per exchange message (after the whole message); or a
        duration (``"100ms"``, int ns, ...) for rows on multiples of it, the row at ``t``
        being the book after every event with ``ts <= t``.
    crossed : what a crossed book (best bid >= best ask) does: ``"flag"`` (``valid`` False),
        ``"raise"`` (LobError) or ``"repair"`` (drop the crossing levels of the side updated
        least recently, counted in ``stats['repairs']``).
    orphans : ``"keep"`` or ``"prune"`` levels deeper than the last snapshot reached (nothing
        ever deletes what a snapshot did not list); counted either way.
    max_stale : rows more than this duration after the last message are not ``valid``.

    Grid rows after a chunk's last message come out with the next chunk (or ``finish()``):
    only the next message tells whether a sequence break (GAP) came before it, which makes
    those rows invalid.  So chunks give exactly the rows of one call, wherever they are cut.
    Times must lie in 1970-01-01..2262-01-01 (NaT is refused, naming the row), and one
    chunk's grid may have at most 2^31 rows.  Ctrl-C stops a long ``feed``; the builder then
    refuses more rows (start a new one).

    Examples
    --------
    >>> import lobfast
    >>> from lobfast import datasets
    >>> md = lobfast.read_binance(datasets.path("spot_btcusdt_20240808"))
    >>> builder = lobfast.BookBuilder(levels=5, every="1s")
    >>> for chunk in (md.depth[:100_000], md.depth[100_000:]):
    ...     rows = builder.feed(chunk)
    >>> tail = builder.finish()
    >>> bids, bid_sizes, asks, ask_sizes = builder.book()
    >>> bool(bids[0] < asks[0])
    True
    """

    def __init__(self, levels: int = 10, *, every=None, crossed: str = "flag", orphans: str = "keep", max_stale=None):
        if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 1:
            raise ValueError(f"levels must be an int >= 1, not {levels!r}")
        if orphans not in ("keep", "prune"):
            raise ValueError(f"orphans must be 'keep' or 'prune', not {orphans!r}")
        self._book = _core.Book(
            levels=int(levels),
            every=0 if every is None else parse_duration(every, "every"),
            crossed=crossed,
            prune_orphans=orphans == "prune",
            max_stale=0 if max_stale is None else parse_duration(max_stale, "max_stale"),
        )
        self.levels = int(levels)

    def feed(self, depth: DepthEvents) -> BookSnapshots:
        """Apply a chunk of rows (sorted by ts, continuing the previous chunk); the rows it completes."""
        if not isinstance(depth, DepthEvents):
            raise TypeError(f"feed() takes DepthEvents, not {type(depth).__name__}")
        c = depth.columns
        return BookSnapshots(**self._book.feed(c["ts"], c["side"], c["price"], c["qty"], c["update_id"], c["flags"]))

    def finish(self) -> BookSnapshots:
        """End of input: the grid rows up to the last event's time (none per message)."""
        return BookSnapshots(**self._book.finish())

    def book(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The whole current book: ``(bid_px, bid_sz, ask_px, ask_sz)``, best level first."""
        bid_px, bid_sz = self._book.side(1)
        ask_px, ask_sz = self._book.side(-1)
        return bid_px, bid_sz, ask_px, ask_sz

    @property
    def stats(self) -> dict[str, int]:
        """Counters: messages, resets, gaps, crossed, repairs, orphan_levels, ..."""
        return self._book.stats()


def reconstruct(
    depth: DepthEvents,
    *,
    levels: int = 10,
    every=None,
    crossed: str = "flag",
    orphans: str = "keep",
    max_stale=None,
) -> BookSnapshots:
    """Rebuild the book from DepthEvents: :class:`BookBuilder` fed one chunk.

    Examples
    --------
    >>> import lobfast
    >>> from lobfast import datasets
    >>> md = lobfast.read_binance(datasets.path("usdm_btcusdt_20240808"))
    >>> snaps = lobfast.reconstruct(md.depth, levels=10, every="100ms")
    >>> snaps.bid_px.shape[1], bool(snaps.valid.all())
    (10, True)
    """
    b = BookBuilder(levels, every=every, crossed=crossed, orphans=orphans, max_stale=max_stale)
    return _concat([b.feed(depth), b.finish()])


def book_at(source: DepthEvents | MarketData, t, *, levels: int = 10) -> BookSnapshots:
    """The book at time ``t`` (after every message that ended at or before ``t``), rebuilt
    from the last snapshot (RESET) at or before ``t`` instead of from the start of the data.

    Returns one row, the row :func:`reconstruct` gives at ``t`` on a grid: ``valid`` is False
    if no snapshot precedes ``t``, a gap came after it, the book is crossed or one-sided, or
    the next message reveals a gap (updates lost between the last message and ``t``).
    ``t`` must lie in 1970-01-01..2262-01-01 (ValueError otherwise).
    """
    depth = source.depth if isinstance(source, MarketData) else source
    t_ns = to_ns(t, "t")
    end = int(np.searchsorted(depth.ts, t_ns, side="right"))
    resets = np.flatnonzero(depth.flags[:end] & Flags.RESET)
    start = int(resets[-1]) if len(resets) else 0
    builder = BookBuilder(levels)
    part = depth[start:end]
    builder.feed(part)  # a message still going on at t is held back: it has not taken effect
    bid_px, bid_sz, ask_px, ask_sz = builder.book()
    valid = bool(builder.stats["valid"])
    ends = np.flatnonzero(part.flags & Flags.END_OF_MESSAGE)
    uid = int(part.update_id[ends[-1]]) if len(ends) else -1
    if valid and t_ns > part.ts[ends[-1]]:
        # the next message (from the first row after the last one applied): a sequence break
        # before it means updates were lost somewhere after the last message
        k = start + int(ends[-1]) + 1
        later = np.flatnonzero(depth.flags[k:] & Flags.END_OF_MESSAGE)
        stop = k + int(later[0]) + 1 if len(later) else len(depth)
        valid = not np.any(depth.flags[k:stop] & Flags.GAP)

    def top(a, fill):
        out = np.full((1, levels), fill, np.float64)
        out[0, : min(levels, len(a))] = a[:levels]
        return out

    return BookSnapshots(
        ts=[t_ns],
        update_id=[uid],
        bid_px=top(bid_px, np.nan),
        bid_sz=top(bid_sz, 0.0),
        ask_px=top(ask_px, np.nan),
        ask_sz=top(ask_sz, 0.0),
        valid=[valid],
    )


@dataclass
class QuoteCheck:
    """Result of :func:`check_against_quotes`."""

    compared: int
    matched: int
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.compared > 0 and self.compared == self.matched

    def __repr__(self) -> str:
        return f"QuoteCheck(compared={self.compared}, matched={self.matched}, mismatches={len(self.mismatches)})"


def check_against_quotes(depth: DepthEvents, quotes: Quotes, *, max_mismatches: int = 100) -> QuoteCheck:
    """Compare the rebuilt book with the exchange's own best bid/offer.

    For every quote whose ``update_id`` equals a depth message's final update id (Binance
    ``bookTicker`` ``u``), the rebuilt best bid/ask price and quantity must be exactly the
    exchange's.  Only rows where the book is valid are compared; sources without update
    ids (``-1``, e.g. Tardis) compare nothing.  Should an id repeat (a resync that replays
    ids), the last valid book row with that id is used.
    """
    snaps = reconstruct(depth, levels=1)
    rows = np.flatnonzero(snaps.valid & (snaps.update_id >= 0))
    uid = snaps.update_id[rows]
    order = np.argsort(uid, kind="stable")
    uid_sorted, rows_sorted = uid[order], rows[order]
    q_ok = np.flatnonzero(quotes.update_id >= 0)
    # the last row with each id: searchsorted from the right, one back
    pos = np.searchsorted(uid_sorted, quotes.update_id[q_ok], side="right") - 1
    hit = (
        (pos >= 0) & (uid_sorted[np.maximum(pos, 0)] == quotes.update_id[q_ok])
        if len(uid_sorted)
        else (np.zeros(len(q_ok), bool))
    )
    qi = q_ok[hit]
    row = rows_sorted[pos[hit]]
    got = np.column_stack([snaps.bid_px[row, 0], snaps.bid_sz[row, 0], snaps.ask_px[row, 0], snaps.ask_sz[row, 0]])
    want = np.column_stack([quotes.bid_px[qi], quotes.bid_qty[qi], quotes.ask_px[qi], quotes.ask_qty[qi]])
    same = np.all(got == want, axis=1)
    bad = np.flatnonzero(~same)
    mismatches = [
        {
            "quote_index": int(qi[i]),
            "update_id": int(quotes.update_id[qi[i]]),
            "book": tuple(got[i]),
            "quote": tuple(want[i]),
        }
        for i in bad[:max_mismatches]
    ]
    return QuoteCheck(compared=len(qi), matched=int(same.sum()), mismatches=mismatches)
