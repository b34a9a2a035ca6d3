"""Binance raw recordings: lobfast.read_binance vs (a) the plain Python loop and (b) the
fastest Python-ecosystem route (msgspec and orjson variants), side by side."""

from __future__ import annotations

import gzip
from functools import partial

from common import SOURCES, check_equal, median, plain_copy, spread, time_side_by_side, warm_page_cache
from competitors import binance_fast, binance_loop

import lobfast

# name -> (label, files); the samples named in the issue
DATASETS = {
    "usdm": ("USD-M BTCUSDT 2024-08-08", "usdm_btcusdt_20240808"),
    "spot": ("spot BTCUSDT 2024-08-08", "spot_btcusdt_20240808"),
}

LOBFAST = "lobfast"
LOOP = "(a) json.loads loop"
MSGSPEC = "(b) msgspec Structs"
ORJSON = "(b) orjson dicts"


def speed(name: str, rounds: int) -> dict:
    """Equality first, then medians of `rounds` interleaved rounds on page-cached text."""
    label, stem = DATASETS[name]
    path = plain_copy(stem)
    warm_page_cache(path)
    size = path.stat().st_size
    p = str(path)
    tools = {
        LOBFAST: partial(lobfast.read_binance, p),
        LOOP: partial(binance_loop.read, p),
        MSGSPEC: partial(binance_fast.read_msgspec, p),
        ORJSON: partial(binance_fast.read_orjson, p),
    }
    expected = tools[LOBFAST]()
    for tool, fn in tools.items():
        if tool != LOBFAST:
            check_equal(f"{label}: {tool}", expected, fn())
    # lobfast is ~10x faster than the next tool: more calls per round for a stable median
    times = time_side_by_side(tools, rounds, inner={LOBFAST: 5})
    med = {t: median(v) for t, v in times.items()}
    best_b = min((MSGSPEC, ORJSON), key=med.get)
    return {
        "dataset": label,
        "path": path,
        "bytes": size,
        "lines": expected.stats["lines"],
        "rows": {t: len(getattr(expected, t)) for t in ("depth", "trades", "agg_trades", "quotes")},
        "median_s": med,
        "spread": {t: spread(v) for t, v in times.items()},
        "calls": {t: len(v) for t, v in times.items()},
        "best_b": best_b,
    }


def speed_gz(name: str, rounds: int) -> dict:
    """Secondary row: the .gz recordings read directly (lobfast's zlib vs gzip.open + (b))."""
    label, stem = DATASETS[name]
    gz = SOURCES / f"{stem}.gz"
    warm_page_cache(gz)
    text_bytes = plain_copy(stem).stat().st_size
    tools = {
        LOBFAST: partial(lobfast.read_binance, str(gz)),
        MSGSPEC: partial(binance_fast.read_msgspec, str(gz), opener=gzip.open),
    }
    expected = lobfast.read_binance(str(plain_copy(stem)))
    for tool, fn in tools.items():
        check_equal(f"{label} .gz: {tool}", expected, fn())
    times = time_side_by_side(tools, rounds, inner={LOBFAST: 2})
    return {
        "dataset": label,
        "gz_bytes": gz.stat().st_size,
        "bytes": text_bytes,
        "median_s": {t: median(v) for t, v in times.items()},
        "spread": {t: spread(v) for t, v in times.items()},
    }
