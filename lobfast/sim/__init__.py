"""Simulated markets calibrated on real recordings.

- :func:`calibrate` measures a :class:`FlowModel` (limit, cancellation and market-order
  rates per level, order sizes, queue sizes, spread) on a recording read by lobfast;
- :func:`simulate` runs that flow on a level-2 book, either flow-driven (``price=None``: the
  mid moves only through simulated book events, the flow reacting to the book's state as
  calibrated) or path-driven (along a price path: arrays, or a process such as :class:`GBM`,
  :class:`Merton`, :class:`HawkesJumpDiffusion`, simulated without drift unless ``drift=``
  asks for one), and returns a :class:`SimMarket`: depth, trades and quotes exactly as
  :func:`lobfast.read_binance` returns them, which it can write as a raw Binance recording;
- :func:`stylized_facts`, :func:`compare_facts` and :func:`plot_facts` hold a simulation
  against the real market; :func:`path_facts` measures price paths as one row of a table;
- :mod:`lobfast.sim.generators` (needs PyTorch, imported on its own): the generative
  baselines ARMLP and QuantGAN, trained on a recording and sampled as price paths.

Examples
--------
>>> import lobfast
>>> from lobfast import datasets, sim
>>> flow = sim.calibrate(lobfast.read_binance(datasets.path("spot_btcusdt_20240808")))
>>> market = sim.simulate("1min", flow=flow, seed=7)
>>> market.market_data().stats["gaps"]
0
"""

from .facts import compare_facts, path_facts, plot_facts, stylized_facts
from .flow import FlowModel, calibrate
from .market import SimMarket, simulate
from .prices import GBM, HawkesJumpDiffusion, Merton

__all__ = [
    "GBM",
    "FlowModel",
    "HawkesJumpDiffusion",
    "Merton",
    "SimMarket",
    "calibrate",
    "compare_facts",
    "path_facts",
    "plot_facts",
    "simulate",
    "stylized_facts",
]
