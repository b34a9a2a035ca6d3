"""lobfast: crypto limit-order-book research with a C core.

Readers parse recorded exchange data in C and return columnar NumPy containers without
copying; see :func:`read_binance`, :func:`iter_binance`, :func:`read_tardis`,
:func:`read_binance_vision`.
"""

from ._core import LobError
from .containers import BookSnapshots, Columns, DepthEvents, MarketData, Quotes, Trades
from .flags import Flags
from .readers import (
    LobWarning,
    expand_paths,
    iter_binance,
    read_binance,
    read_binance_vision,
    read_tardis,
    to_ns,
)

__version__ = "0.1.0"

__all__ = [
    "BookSnapshots",
    "Columns",
    "DepthEvents",
    "Flags",
    "LobError",
    "LobWarning",
    "MarketData",
    "Quotes",
    "Trades",
    "expand_paths",
    "iter_binance",
    "read_binance",
    "read_binance_vision",
    "read_tardis",
    "to_ns",
]
