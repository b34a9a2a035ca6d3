"""Rolling sums and standard deviations over rows or time spans that never reach across a gap.

A NaN in the input (an invalid book row, an unknown return) gives NaN and restarts the
window after it. A value is produced only once the window is full since the last restart:
``window`` rows, or a restart at least the span before the row, so no early value comes from a
partial window.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from .times import parse_horizon


def window_args(window: Any, ts: Any) -> dict[str, Any]:
    """The kernel's window arguments: ``window`` rows (int) or a duration ("10s") over ``ts``."""
    rows, span = parse_horizon(window, "window")
    if rows:
        return {"rows": rows}
    if ts is None:
        raise ValueError(f"a time window ({window!r}) needs ts")
    return {"span": span, "ts": ts}


def rolling_sum(x: Any, window: Any, *, ts: Any = None, out: np.ndarray | None = None) -> np.ndarray:
    """Sum over the last ``window`` rows, or over ts in (t - span, t] when ``window`` is a duration.

    Compensated summation: sliding over millions of rows does not drift. ``out``: a float64
    array of ``len(x)`` rows (1-D, C-contiguous, writable, not sharing memory with ``x``) to
    write into and return instead of a new one, else ValueError.
    """
    return _core.rolling_sum(x, out=out, **window_args(window, ts))


def rolling_std(x: Any, window: Any, *, ts: Any = None, ddof: int = 1, out: np.ndarray | None = None) -> np.ndarray:
    """Standard deviation over the last ``window`` rows or a time span (``ddof=1`` as pandas;
    bottleneck's ``move_std`` uses 0). NaN while fewer than 2 values are in the window.

    ``out``: as in :func:`rolling_sum` (the kernel reads ``x`` behind the row it writes, so
    ``out`` may not be ``x`` itself).

    >>> import numpy as np, lobfast
    >>> out = np.empty(4)
    >>> lobfast.rolling_std(np.array([1.0, 2.0, 4.0, 8.0]), 2, out=out) is out
    True
    """
    return _core.rolling_std(x, ddof=ddof, out=out, **window_args(window, ts))
