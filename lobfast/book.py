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

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _core
from .containers import BookSnapshots, DepthEvents, MarketData, Quotes
from .flags import Flags
from .readers import read_binance
from .timeindex import TimeIndex
from .times import _TS_MAX, _TS_MIN, parse_duration, to_ns

# book_at from files: the receive-time window read around t.  Exchange time t (the rows'
# ts) and receive time differ by the feed's latency plus the recorder's clock offset (about
# 1.3 s in the bundled recordings); a minute each side covers any sane offset.
_AROUND_T = 60 * 10**9


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
    depth: DepthEvents | BookSnapshots,
    *,
    levels: int = 10,
    every=None,
    crossed: str = "flag",
    orphans: str = "keep",
    max_stale=None,
) -> BookSnapshots:
    """Rebuild the book from DepthEvents: :class:`BookBuilder` fed one chunk.

    From BookSnapshots (such as Tardis ``book_snapshot_N`` files read by
    :func:`~lobfast.read_tardis`), the snapshots are resampled instead: the row at grid time
    ``t`` is the last snapshot with ``ts <= t`` (by time; of equal times the last given), cut
    to ``levels``; the grid runs from the first snapshot to the last, as for events, and a
    row more than ``max_stale`` after its snapshot is not ``valid``.  ``every=None`` keeps
    one row per snapshot.  The snapshots must hold at least ``levels`` levels (a deeper
    level they do not list is unknown, not empty: ValueError); ``crossed`` and ``orphans``
    concern events only (ValueError unless left as they are: a snapshot's ``valid`` is kept).

    Examples
    --------
    >>> import lobfast
    >>> from lobfast import datasets
    >>> md = lobfast.read_binance(datasets.path("usdm_btcusdt_20240808"))
    >>> snaps = lobfast.reconstruct(md.depth, levels=10, every="100ms")
    >>> snaps.bid_px.shape[1], bool(snaps.valid.all())
    (10, True)
    """
    if isinstance(depth, BookSnapshots):
        if crossed != "flag" or orphans != "keep":
            raise ValueError("crossed= and orphans= apply to DepthEvents; BookSnapshots keep their own valid")
        return _resample(depth, levels, every, max_stale)
    b = BookBuilder(levels, every=every, crossed=crossed, orphans=orphans, max_stale=max_stale)
    return _concat([b.feed(depth), b.finish()])


def _resample(snaps: BookSnapshots, levels, every, max_stale) -> BookSnapshots:
    """BookSnapshots on a grid (see :func:`reconstruct`)."""
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 1:
        raise ValueError(f"levels must be an int >= 1, not {levels!r}")
    if snaps.levels < levels and len(snaps):
        raise ValueError(
            f"the snapshots hold {snaps.levels} levels per side, fewer than levels={levels}: "
            "deeper levels are unknown (ask for levels <= the snapshots' depth)"
        )
    step = None if every is None else parse_duration(every, "every")
    stale = None if max_stale is None else parse_duration(max_stale, "max_stale")
    ts = snaps.ts
    bad = np.flatnonzero((ts < _TS_MIN) | (ts > _TS_MAX))
    if len(bad):
        raise ValueError(f"BookSnapshots ts[{bad[0]}] = {ts[bad[0]]} is not a time in 1970-01-01..2262-01-01 (or NaT)")
    order = None if np.all(ts[1:] >= ts[:-1]) else np.argsort(ts, kind="stable")
    sts = ts if order is None else ts[order]
    if not len(ts):
        grid = np.empty(0, np.int64)
    elif step is None:
        grid = sts
    else:  # times lie in 1970..2262 (checked), so the grid's ends cannot overflow
        grid = np.arange(-(-int(sts[0]) // step) * step, int(sts[-1]) // step * step + 1, step, dtype=np.int64)
    if step is None:
        at = np.arange(len(ts))  # each snapshot, in time order
    else:
        at = np.searchsorted(sts, grid, side="right") - 1  # >= 0: the grid starts at the first snapshot
    rows = at if order is None else order[at]
    valid = snaps.valid[rows]
    if stale is not None:
        valid = valid & (grid - sts[at] <= stale)
    cut = slice(0, int(levels))
    return BookSnapshots(
        ts=grid,
        update_id=snaps.update_id[rows],
        bid_px=snaps.bid_px[rows, cut],
        bid_sz=snaps.bid_sz[rows, cut],
        ask_px=snaps.ask_px[rows, cut],
        ask_sz=snaps.ask_sz[rows, cut],
        valid=valid,
    )


def book_at(source, t, *, levels: int = 10, symbol: str | None = None) -> BookSnapshots:
    """The book at time ``t`` (after every message that ended at or before ``t``), rebuilt
    from the last snapshot (RESET) at or before ``t`` instead of from the start of the data.

    ``source`` is DepthEvents or MarketData, or raw Binance recordings: a file, a list of
    rotated files, a glob, or a raw :class:`~lobfast.TimeIndex`.  Files are read through
    their time index as a window around ``t`` (a minute of receive time each side: ``t`` is
    exchange time, like the rows' ``ts``), which opens with the book replayed from the last
    checkpoint before it (see :func:`~lobfast.read_binance`): memory and time are bounded
    by the book and a few minutes of data, not by the files.  ``symbol`` selects a symbol
    in files that hold several.

    Returns one row, the row :func:`reconstruct` gives at ``t`` on a grid: ``valid`` is False
    if no snapshot precedes ``t``, a gap came after it, the book is crossed or one-sided, or
    the next message reveals a gap (updates lost between the last message and ``t``).
    ``t`` must lie in 1970-01-01..2262-01-01 (ValueError otherwise).
    """
    t_ns = to_ns(t, "t")
    if isinstance(source, MarketData):
        depth = source.depth
    elif isinstance(source, DepthEvents):
        depth = source
    else:
        lo, hi = max(t_ns - _AROUND_T, 0), t_ns + _AROUND_T
        if isinstance(source, TimeIndex):
            depth = source.read(lo, hi, symbol=symbol).depth
        else:
            depth = read_binance(source, start=lo, end=hi, symbol=symbol).depth
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
