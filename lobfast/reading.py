"""What the readers and the time index share: the files a ``paths`` argument names, the bound
on a line, a C Reader made from checked arguments, and its tables as MarketData."""

from __future__ import annotations

import errno
import glob as _glob
import os
import stat
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core
from .containers import DepthEvents, MarketData, Quotes, Trades
from .times import to_ns

PathLike = str | os.PathLike
Paths = PathLike | Sequence[PathLike]
MAX_LINE = 64 << 20  # default bound on the bytes of one line of a file


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
        try:  # PermissionError (an unsearchable directory) is raised as it is, naming the path
            mode = os.stat(p).st_mode
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "no such file", p) from None
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(f"{p!r} is a directory; pass a file or a glob such as '{p}/*.gz'")
    return out


def check_max_line(max_line: int) -> int:
    """``max_line`` as an int in [1, 2**40]: the longest line, in bytes, a reader accepts."""
    if isinstance(max_line, bool) or not isinstance(max_line, (int, np.integer)) or not 1 <= max_line <= 1 << 40:
        raise ValueError(f"max_line must be an int in [1, 2**40] (bytes), not {max_line!r}")
    return int(max_line)


def _reader(fmt: str, symbol, on_error: str, start, end, max_line: int = MAX_LINE, book: bool = False) -> _core.Reader:
    """A core reader; ``book``: Binance lines before ``start`` build the book the window
    opens with (lobfast.replay)."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    kw: dict[str, Any] = {"symbol": symbol, "on_error": on_error, "max_line": check_max_line(max_line)}
    if book:
        kw["book"] = True
    if start is not None:
        kw["start"] = to_ns(start)
    if end is not None:
        kw["end"] = to_ns(end)
    return _core.Reader(fmt, **kw)


def _market_data(tables: dict[str, dict[str, np.ndarray]], stats: dict[str, Any]) -> MarketData:
    return MarketData(
        depth=DepthEvents(**tables["depth"]),
        trades=Trades(**tables["trades"]),
        agg_trades=Trades(**tables["agg_trades"]),
        quotes=Quotes(**tables["quotes"]),
        stats=stats,
    )
