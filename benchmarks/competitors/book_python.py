"""Python-driven order books: what a user without lobfast.reconstruct would write.

Both loops apply DepthEvents rows one by one (``qty == 0`` deletes the level, deleting an
unknown level is a no-op, a ``RESET`` row clears the book first) and read the top ``levels``
of each side after every ``END_OF_MESSAGE`` row, as ``lobfast.reconstruct(levels=...,
every=None)`` does.  They return the four (N, levels) arrays of BookSnapshots (empty levels:
NaN price, 0 size), so the outputs can be checked equal and the timings include the same
work: a NumPy result.

- ``orderbook_top``: ``order_book.OrderBook`` (the C extension cryptofeed uses).  Its
  fastest documented top-N read is ``OrderBook(max_depth=N)`` + ``side.to_list()`` (since
  0.6.1 ``to_list`` honours ``max_depth``; without it, ``index(i)`` per level measured the
  same).  Both rebuild the side's sorted key tuple (``PyList_Sort`` of every key) whenever
  a level was added or removed since the last read, so the cost grows with the depth of
  the book, not with N.
- ``sorteddict_top``: one ``sortedcontainers.SortedDict`` per side, bids keyed by
  ``-price`` so that both sides start with the best level; ``items()[:N]`` reads the top
  (a slice of the first sublist), ``pop(key, None)`` deletes.

The loops iterate ``zip`` over the columns' ``.tolist()`` (Python floats, the fastest way
to walk NumPy columns from Python) with the garbage collector paused.
"""

from __future__ import annotations

import gc
import math
from itertools import chain

import numpy as np
from order_book import OrderBook
from sortedcontainers import SortedDict

from lobfast import DepthEvents, Flags

RESET = int(Flags.RESET)
END_OF_MESSAGE = int(Flags.END_OF_MESSAGE)


def _columns(depth: DepthEvents) -> tuple[list, list, list, list]:
    return depth.side.tolist(), depth.price.tolist(), depth.qty.tolist(), depth.flags.tolist()


def _arrays(tops: list[list[tuple[float, float]]], levels: int) -> dict[str, np.ndarray]:
    """``tops``: per message the bid list, then the ask list, of (price, size) best first."""
    pad = [(math.nan, 0.0)] * levels
    flat: list[tuple[float, float]] = []
    extend = flat.extend
    for t in tops:
        extend(t)
        if len(t) < levels:
            extend(pad[len(t) :])
    a = np.fromiter(chain.from_iterable(flat), np.float64, count=2 * len(flat))
    a = a.reshape(len(tops) // 2, 2, levels, 2)  # message, side, level, (price, size)
    return {
        "bid_px": np.ascontiguousarray(a[:, 0, :, 0]),
        "bid_sz": np.ascontiguousarray(a[:, 0, :, 1]),
        "ask_px": np.ascontiguousarray(a[:, 1, :, 0]),
        "ask_sz": np.ascontiguousarray(a[:, 1, :, 1]),
    }


def orderbook_top(depth: DepthEvents, levels: int = 10) -> dict[str, np.ndarray]:
    """Top ``levels`` per message with order_book.OrderBook."""
    side, price, qty, flags = _columns(depth)
    tops: list = []
    append = tops.append
    enabled = gc.isenabled()
    gc.disable()
    try:
        ob = OrderBook(max_depth=levels)
        bids, asks = ob.bids, ob.asks
        for s, p, q, f in zip(side, price, qty, flags, strict=True):
            if f & RESET:
                ob = OrderBook(max_depth=levels)
                bids, asks = ob.bids, ob.asks
            if s:
                book = bids if s > 0 else asks
                if q:
                    book[p] = q
                else:
                    try:
                        del book[p]
                    except KeyError:
                        pass  # a level the book never had (normal on Binance)
            if f & END_OF_MESSAGE:
                append(bids.to_list())
                append(asks.to_list())
        return _arrays(tops, levels)
    finally:
        if enabled:
            gc.enable()


def sorteddict_top(depth: DepthEvents, levels: int = 10) -> dict[str, np.ndarray]:
    """Top ``levels`` per message with two sortedcontainers.SortedDict."""
    side, price, qty, flags = _columns(depth)
    tops: list = []
    append = tops.append
    enabled = gc.isenabled()
    gc.disable()
    try:
        bids, asks = SortedDict(), SortedDict()  # bids keyed by -price: best first on both
        bid_items, ask_items = bids.items(), asks.items()
        for s, p, q, f in zip(side, price, qty, flags, strict=True):
            if f & RESET:
                bids.clear()
                asks.clear()
            if s > 0:
                if q:
                    bids[-p] = q
                else:
                    bids.pop(-p, None)
            elif s < 0:
                if q:
                    asks[p] = q
                else:
                    asks.pop(p, None)
            if f & END_OF_MESSAGE:
                append([(-k, v) for k, v in bid_items[:levels]])
                append(ask_items[:levels])
        return _arrays(tops, levels)
    finally:
        if enabled:
            gc.enable()
