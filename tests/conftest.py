"""Shared fixtures: paths of the real recordings in tests/data (see tests/data/README.md)."""

from __future__ import annotations

import gzip
import heapq
import signal
import threading
import time
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
BINANCE = DATA / "binance"
SPOT_BTC_0808 = BINANCE / "spot_btcusdt_20240808.gz"
SPOT_BTC_0809 = BINANCE / "spot_btcusdt_20240809.gz"
SPOT_ETH_0808 = BINANCE / "spot_ethusdt_20240808.gz"
USDM_BTC_0808 = BINANCE / "usdm_btcusdt_20240808.gz"


def raw_lines(path: Path) -> list[bytes]:
    """The recording's lines, newline included."""
    with gzip.open(path, "rb") as f:
        return f.readlines()


@pytest.fixture(scope="session")
def mixed_btc_eth(tmp_path_factory) -> Path:
    """Spot BTC and ETH 2024-08-08 interleaved by receive time into one file (both REST
    snapshot bodies included, as a multi-symbol recorder would write them)."""
    out = tmp_path_factory.mktemp("mixed") / "spot_btc_eth.txt"
    key = lambda line: int(line.split(b" ", 1)[0])  # noqa: E731
    merged = heapq.merge(raw_lines(SPOT_BTC_0808), raw_lines(SPOT_ETH_0808), key=key)
    out.write_bytes(b"".join(merged))
    return out


@pytest.fixture(scope="session")
def spot_book():
    """The real spot BTCUSDT book (both days) every 100 ms, 10 levels: 6504 rows."""
    import lobfast

    md = lobfast.read_binance([SPOT_BTC_0808, SPOT_BTC_0809])
    return lobfast.reconstruct(md.depth, levels=10, every="100ms")


def interrupted(call, after: float = 0.3) -> float:
    """Seconds `call()` ran before a SIGINT sent to the main thread `after` s after its start
    stopped it; it must raise KeyboardInterrupt."""
    main = threading.main_thread().ident
    timer = threading.Timer(after, lambda: signal.pthread_kill(main, signal.SIGINT))
    start = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            call()
    finally:
        timer.cancel()
    return time.perf_counter() - start


def timed(call) -> float:
    """Seconds `call()` took."""
    start = time.perf_counter()
    call()
    return time.perf_counter() - start
