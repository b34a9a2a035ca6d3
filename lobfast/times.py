"""Times and durations as int64 ns: :func:`to_ns` (a time, checked against the range the C
core accepts), :func:`parse_duration` and :func:`parse_horizon`.  The bottom layer: imports
nothing of lobfast."""

from __future__ import annotations

import datetime as _dt
import re
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = ["parse_duration", "parse_horizon", "to_ns"]


def to_ns(t: Any, name: str = "time") -> int:
    """A time as int64 ns since the epoch: int (ns), str (ISO 8601, naive = UTC),
    ``datetime``, ``numpy.datetime64`` or ``pandas.Timestamp``.

    Only times the C core accepts: 1970-01-01..2262-01-01.  NaT (``np.datetime64("NaT")``,
    ``pd.NaT``, or its int64 value) is a missing time, not a time; it and times outside the
    range are a ValueError naming ``name`` (checked in the value's own unit, as a cast to
    datetime64[ns] wraps such times around silently)."""
    if isinstance(t, (int, np.integer)) and not isinstance(t, (bool, np.bool_)):
        ns = int(t)
        if ns == _NAT:
            raise ValueError(f"{name}={t!r} is NaT (a missing time), not a time; use None for an open end")
    else:
        d = t
        if getattr(d, "tzinfo", None) is not None:  # aware datetime / Timestamp
            d = d.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        try:
            d = np.datetime64("NaT") if _is_nat(d) else np.datetime64(d)
        except (ValueError, TypeError, OverflowError) as e:
            raise ValueError(
                f"cannot read {t!r} as a time for {name} (int ns, ISO string, datetime, datetime64)"
            ) from e
        if np.isnat(d):
            raise ValueError(f"{name}={t!r} is NaT (a missing time), not a time; use None for an open end")
        if not _DAY_MIN <= d < _DAY_MAX:
            raise ValueError(f"{name}={t!r} is outside 1970-01-01..2262-01-01")
        ns = int(d.astype("datetime64[ns]").astype(np.int64))
    if not _TS_MIN <= ns <= _TS_MAX:
        raise ValueError(f"{name}={t!r} ({ns} ns) is outside 1970-01-01..2262-01-01")
    return ns


# what the C core accepts as a time (lob.h: LOB_TS_MIN, LOB_TS_MAX): 1970-01-01..2262-01-01
_TS_MIN, _TS_MAX = 0, 9_214_646_400_000_000_000
_DAY_MIN, _DAY_MAX = np.datetime64("1970-01-01"), np.datetime64("2262-01-02")
_NAT = np.iinfo(np.int64).min


def _is_nat(t: Any) -> bool:
    """``pd.NaT``, ``np.datetime64("NaT")`` (missing times compare unequal to themselves)."""
    try:
        return bool(t != t)
    except (TypeError, ValueError):
        return False


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


def parse_duration(value: Any, name: str = "every", *, allow_zero: bool = False) -> int:
    """A duration as int ns: an int (ns), ``"100ms"``, ``"1.5s"``, ``"5min"``, ``"250us"``,
    ``numpy.timedelta64`` or ``datetime.timedelta``.

    Computed exactly (no floats); it must be a positive (with ``allow_zero``, non-negative)
    whole number of nanoseconds of at most 2^62 (146 years), else ValueError naming ``name``
    and the value.
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
    if ns < 0 or (ns == 0 and not allow_zero):
        raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} duration, not {value!r}")
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
    return 0, parse_duration(value, name, allow_zero=allow_zero)
