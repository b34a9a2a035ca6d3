"""Type stubs of the C extension lobfast._core."""

from collections.abc import Callable
from os import PathLike

import numpy as np

FLAG_SNAPSHOT: int
FLAG_RESET: int
FLAG_GAP: int
FLAG_END_OF_MESSAGE: int

class LobError(ValueError):
    path: str | None
    line: int
    offset: int

class Reader:
    def __init__(
        self,
        format: str,
        *,
        symbol: str | None = ...,
        on_error: str = ...,
        start: int | None = ...,
        end: int | None = ...,
        max_line: int = ...,
        book: bool = ...,
        checkpoint_every: int = ...,
        threads: int = ...,
    ) -> None: ...
    def open(
        self, path: str | PathLike[str], span: tuple[int, int, int, int] | None = ..., line0: int = ...
    ) -> None: ...
    def pump(self, max_rows: int = ...) -> bool: ...
    def close(self) -> None: ...
    def finish(self) -> None: ...
    def take(self) -> dict[str, dict[str, np.ndarray]]: ...
    def stats(self) -> dict[str, int | str]: ...
    def restore(
        self,
        market: int,
        last_u: int,
        last_ts: int,
        last_local: int,
        side: np.ndarray,
        price: np.ndarray,
        qty: np.ndarray,
    ) -> None: ...
    def checkpoints(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]: ...

def parse_decimal(text: bytes) -> float: ...
def schemas() -> dict[str, list[tuple[str, str, int]]]: ...
def release_kept() -> None: ...
def empty(n: int, type: str) -> np.ndarray: ...

class Book:
    def __init__(
        self,
        *,
        levels: int = ...,
        every: int = ...,
        crossed: str = ...,
        prune_orphans: bool = ...,
        max_stale: int = ...,
    ) -> None: ...
    def feed(
        self,
        ts: np.ndarray,
        side: np.ndarray,
        price: np.ndarray,
        qty: np.ndarray,
        update_id: np.ndarray,
        flags: np.ndarray,
    ) -> dict[str, np.ndarray]: ...
    def finish(self) -> dict[str, np.ndarray]: ...
    def side(self, side: int) -> tuple[np.ndarray, np.ndarray]: ...
    def stats(self) -> dict[str, int]: ...

# label kernels (csrc/py/labels.c); `valid` is a bool array or None (finite mids usable)
def label_return(
    mid: np.ndarray,
    ts: np.ndarray,
    valid: np.ndarray | None,
    rows: int,
    ns: int,
    out: np.ndarray | None = None,
    known_at: np.ndarray | None = None,
    name: str = "ret",
) -> tuple[np.ndarray, np.ndarray]: ...
def label_smooth(
    mid: np.ndarray,
    ts: np.ndarray,
    valid: np.ndarray | None,
    k: int,
    against_mean: bool,
    out: np.ndarray | None = None,
    known_at: np.ndarray | None = None,
    name: str = "smooth",
) -> tuple[np.ndarray, np.ndarray]: ...
def label_ema(f: np.ndarray, alpha: float, out: np.ndarray | None = None, name: str = "out") -> np.ndarray: ...
def label_classify(x: np.ndarray, alpha: float, out: np.ndarray | None = None, name: str = "out") -> np.ndarray: ...
def label_barrier(
    mid: np.ndarray,
    ts: np.ndarray,
    valid: np.ndarray | None,
    upper: np.ndarray,
    lower: np.ndarray,
    rows: int,
    ns: int,
    out: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None] | None = None,
    name: str = "",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

# feature kernels (csrc/py/features.c)
def features(
    ts: np.ndarray,
    valid: np.ndarray,
    update_id: np.ndarray,
    bid_px: np.ndarray,
    bid_sz: np.ndarray,
    ask_px: np.ndarray,
    ask_sz: np.ndarray,
    requests: list[tuple[str, int] | tuple[str, int, np.ndarray | None, str]],
    threads: int = 1,
) -> list[np.ndarray]: ...
def trade_flow(
    ts: np.ndarray,
    valid: np.ndarray,
    trade_ts: np.ndarray,
    qty: np.ndarray,
    side: np.ndarray,
    out: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, np.ndarray | None] | None = None,
    threads: int = 1,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, np.ndarray | None]: ...
def rolling_sum(
    x: np.ndarray,
    *,
    rows: int = 0,
    span: int = 0,
    ts: np.ndarray | None = None,
    out: np.ndarray | None = None,
    name: str = "out",
) -> np.ndarray: ...
def rolling_std(
    x: np.ndarray,
    *,
    rows: int = 0,
    span: int = 0,
    ts: np.ndarray | None = None,
    ddof: int = 1,
    out: np.ndarray | None = None,
    name: str = "out",
) -> np.ndarray: ...
def rolling_many(
    jobs: list[tuple[np.ndarray, int, int, np.ndarray | None, int, np.ndarray, str]],
    threads: int = 1,
) -> None: ...
def aggregate(
    book_ts: np.ndarray,
    bid_px: np.ndarray,
    ask_px: np.ndarray,
    valid: np.ndarray | None,
    trade_ts: np.ndarray,
    trade_px: np.ndarray,
    trade_qty: np.ndarray,
    trade_side: np.ndarray,
    *,
    by: str = ...,
    every: int | float,
    empty_vwap_mid: bool = ...,
    book_name: str = ...,
    columns: list[str] | None = ...,
    out: dict[str, np.ndarray] | Callable[[int, list[tuple[str, str]]], dict[str, np.ndarray]] | None = ...,
) -> dict[str, np.ndarray]: ...

# time index (csrc/py/timeindex.c): key = (sep, field, unit ns, header lines, name);
# entries and positions are arrays of lobfast.timeindex.ENTRY (ts, line, row, d_off, c_off,
# d_at); a span = (c_lo, d_at, d_lo, d_hi)
Key = (
    tuple[str, int, int, int, str] | tuple[str, int, int, int, str, int]
)  # sep, field, unit, skip_lines, name[, max_line]
Span = tuple[int, int, int, int]

class TimeIx:
    def __init__(
        self, path: str | PathLike[str], key: Key, entries: np.ndarray, info: dict[str, int | str]
    ) -> None: ...
    @classmethod
    def build(cls, path: str | PathLike[str], key: Key, block: int, *, gzip: bool = ...) -> TimeIx | None: ...
    @classmethod
    def adopt(
        cls, path: str | PathLike[str], key: Key, entries: np.ndarray, info: dict[str, int | str], t0: int, t1: int
    ) -> tuple[TimeIx, tuple[np.ndarray, int, tuple[Span, int] | None]]: ...
    @staticmethod
    def layout() -> tuple[int, tuple[tuple[str, int], ...]]: ...
    @property
    def entries(self) -> np.ndarray: ...
    @property
    def info(self) -> dict[str, int | str]: ...
    @property
    def path(self) -> str: ...
    def window(self, t0: int, t1: int) -> tuple[np.ndarray, int, tuple[Span, int] | None]: ...
    def pieces(self, ends: np.ndarray, n: int) -> list[tuple[Span, int, int]]: ...

def csv_columns(
    path: str | PathLike[str],
    span: tuple[int, int, int, int],
    line0: int,
    key: Key,
    nrows: int,
    spec: list[tuple[int, int, str, np.ndarray]],
) -> list[list[str] | None]: ...
def convert(
    src: str | PathLike[str], dst: str | PathLike[str], key: Key | None, frame_ns: int, frame_bytes: int, level: int
) -> dict[str, int]: ...
def head(path: str | PathLike[str], nbytes: int) -> bytes: ...
def window_gather(
    x: np.ndarray,
    ends: np.ndarray,
    t: int,
    out: np.ndarray,
    shift: np.ndarray | None = None,
    scale: np.ndarray | None = None,
    group: np.ndarray | None = None,
    threads: int = 1,
) -> None: ...

# Hawkes process (csrc/py/hawkes.c): times as float64 in one unit, mu and beta per that unit
def hawkes_loglik(
    t: np.ndarray, T0: float, T1: float, mu: float, alpha: float, beta: float
) -> tuple[float, np.ndarray]: ...
def hawkes_simulate(
    mu: float, alpha: float, beta: float, T0: float, T1: float, seed: int, *, cap: int = 0
) -> np.ndarray: ...
