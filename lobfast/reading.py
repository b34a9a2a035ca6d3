"""What the readers, the time index and the kernels' wrappers share: the files a ``paths``
argument names, the bound on a line, a C Reader made from checked arguments, its tables as
MarketData, and the output arrays of a kernel's ``out=`` (``_out_arrays``)."""

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


def cpu_threads(threads: int | None) -> int:
    """``threads``, or all the CPUs this process may run on when it is None."""
    if threads is None:
        count = getattr(os, "process_cpu_count", None)
        if count is not None:
            return max(1, count() or 1)
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):
            return max(1, os.cpu_count() or 1)
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or not 1 <= threads <= 1024:
        raise ValueError(f"threads must be an int in [1, 1024] or None (all CPUs), not {threads!r}")
    return int(threads)


def _reader(
    fmt: str,
    symbol,
    on_error: str,
    start,
    end,
    max_line: int = MAX_LINE,
    book: bool = False,
    threads: int | None = 1,
) -> _core.Reader:
    """A core reader; ``book``: Binance lines before ``start`` build the book the window
    opens with (lobfast.replay); ``threads``: zstd files with a seek table are decompressed
    and parsed on that many threads (None: all CPUs; formats that cannot ignore it)."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    kw: dict[str, Any] = {"symbol": symbol, "on_error": on_error, "max_line": check_max_line(max_line)}
    kw["threads"] = cpu_threads(threads)
    if book:
        kw["book"] = True
    if start is not None:
        kw["start"] = to_ns(start)
    if end is not None:
        kw["end"] = to_ns(end)
    return _core.Reader(fmt, **kw)


def open_part(r: _core.Reader, path: str, span: Any, line0: int) -> None:
    """Open ``path`` in the reader ``r``: the part of it a time index found (``span``, with
    ``line0`` lines before it), or all of it when ``span`` is None."""
    if span is None:
        r.open(path)
    else:
        r.open(path, span=span, line0=line0)


def _market_data(tables: dict[str, dict[str, np.ndarray]], stats: dict[str, Any]) -> MarketData:
    return MarketData(
        depth=DepthEvents(**tables["depth"]),
        trades=Trades(**tables["trades"]),
        agg_trades=Trades(**tables["agg_trades"]),
        quotes=Quotes(**tables["quotes"]),
        stats=stats,
    )


def new_column(n: int, dtype: Any) -> np.ndarray:
    """An uninitialised column of n values: float64 and int64 ones of 4 MiB or more are blocks
    that lobfast keeps for reuse once freed (csrc/core/blocks.c), others NumPy's."""
    dt = np.dtype(dtype)
    if dt == np.float64 or dt == np.int64:
        return _core.empty(n, "d" if dt == np.float64 else "q")
    return np.empty(n, dtype)


def _out_arrays(out: Any, spec: list[tuple[str, Any]], n: int, what: str = "out") -> dict[str, np.ndarray]:
    """The arrays a kernel writes its columns into, by name: ``out``'s own (a dict ``{name:
    ndarray}`` or a previously returned Frame), each of which must be there, or with
    ``out=None`` new ones. Their dtype, length and layout are checked by the C binding that
    writes them; two columns on the same memory are refused here.

    New columns are separate arrays, each a block of lobfast's own (:func:`new_column`): a
    kernel is called again and again, and a freed column of about the size comes back without a
    page fault (on a VM each fresh page faults in the host too: 2 M rows of features took
    465-793 ms with separate columns, 979-1,675 ms from one fresh block, see
    benchmarks/PROFILE.md)."""
    if out is None:
        return {name: new_column(n, t) for name, t in spec}
    if not (hasattr(out, "keys") and hasattr(out, "__getitem__")):
        raise ValueError(
            f"{what}= takes a dict {{name: ndarray}} or a Frame this function returned, not {type(out).__name__}"
        )
    got = {}
    for name, _ in spec:
        if name not in out:
            raise ValueError(f"{what} has no column {name!r}: it needs an array for every column computed")
        got[name] = out[name]
    _apart(got, what)
    return got


def _apart(arrays: dict[str, Any], what: str = "out") -> None:
    """ValueError when two of the output arrays share memory (one would overwrite the other)."""
    items = [(k, a) for k, a in arrays.items() if isinstance(a, np.ndarray)]
    for i, (k, a) in enumerate(items):
        for k2, b in items[i + 1 :]:
            if np.may_share_memory(a, b):
                raise ValueError(f"{what}[{k!r}] and {what}[{k2!r}] share memory: each column needs its own array")
