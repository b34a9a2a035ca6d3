"""Type stubs of the C extension lobfast._core."""

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
        start: int = ...,
        end: int = ...,
    ) -> None: ...
    def open(self, path: str | PathLike[str]) -> None: ...
    def pump(self, max_rows: int = ...) -> bool: ...
    def finish(self) -> None: ...
    def take(self) -> dict[str, dict[str, np.ndarray]]: ...
    def stats(self) -> dict[str, int | str]: ...

def parse_decimal(text: bytes) -> float: ...
def schemas() -> dict[str, list[tuple[str, str, int]]]: ...

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
