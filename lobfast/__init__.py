"""lobfast: crypto limit-order-book research with a C core.

Readers parse recorded exchange data in C and return columnar NumPy containers without
copying; see :func:`read_binance`, :func:`iter_binance`, :func:`read_tardis`,
:func:`read_binance_vision`; :class:`TimeIndex` reads any time window of long sorted files
(CSV or raw lines, plain or seekable zstd) without reading the rest; the C order book rebuilds Level-2 books from them
(:func:`reconstruct`, :class:`BookBuilder`, :func:`book_at`, :func:`check_against_quotes`);
features and labels feed models through zero-copy :func:`windows` and :class:`Normalizer`.
PyTorch (optional, ``lobfast[torch]``) lives in :mod:`lobfast.torch` (data path),
:mod:`lobfast.models` and :mod:`lobfast.train`; evaluation in :mod:`lobfast.evaluate`,
:mod:`lobfast.split` and :mod:`lobfast.backtest`; simulated markets in :mod:`lobfast.sim`;
the whole pipeline in ``lobfast demo`` (:mod:`lobfast.demo`); folders of recordings become a
partitioned Parquet store with ``lobfast process`` (:mod:`lobfast.store`, :func:`open_store`).
"""

from . import labels
from ._version import __version__ as __version__
from .aggregation import aggregate
from .book import BookBuilder, QuoteCheck, book_at, check_against_quotes, reconstruct
from .collector import Collector
from .containers import BookSnapshots, Columns, DepthEvents, MarketData, Quotes, Trades
from .convert import convert
from .errors import LobError, LobWarning
from .flags import Flags
from .frame import FeatureFrame, Frame, LabelFrame
from .leakage import leakage_report
from .microstructure import features
from .quality import QualityReport, quality_report
from .readers import expand_paths, iter_binance, prepare_windows, read_binance, read_binance_vision, read_tardis
from .rolling import rolling_std, rolling_sum
from .store import Store, open_store
from .timeindex import TimeIndex
from .times import parse_duration, to_ns
from .windowing import Normalizer, TargetScaler, window_index, windows

__all__ = [
    "BookBuilder",
    "BookSnapshots",
    "Collector",
    "Columns",
    "DepthEvents",
    "FeatureFrame",
    "Flags",
    "Frame",
    "LabelFrame",
    "LobError",
    "LobWarning",
    "MarketData",
    "Normalizer",
    "TargetScaler",
    "Quotes",
    "QualityReport",
    "QuoteCheck",
    "Store",
    "TimeIndex",
    "Trades",
    "aggregate",
    "book_at",
    "check_against_quotes",
    "convert",
    "expand_paths",
    "features",
    "iter_binance",
    "labels",
    "leakage_report",
    "open_store",
    "parse_duration",
    "prepare_windows",
    "quality_report",
    "read_binance",
    "read_binance_vision",
    "read_tardis",
    "reconstruct",
    "rolling_std",
    "rolling_sum",
    "to_ns",
    "window_index",
    "windows",
]
