"""Figures made without pyplot (no global state, nothing to close, no display needed) that
Jupyter shows as PNG: what plots, evaluate, backtest and sim draw on.  matplotlib is
optional: it is imported with the first figure."""

from __future__ import annotations

from typing import Any

__all__ = ["figure", "save"]


def figure(**kw: Any):
    """A new ``matplotlib.figure.Figure`` (``Figure(**kw)``) that Jupyter shows as a PNG when it
    is a cell's result, with or without pyplot (ImportError naming matplotlib when it is missing)."""
    try:
        from ._figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("figures need matplotlib: pip install matplotlib") from e
    return Figure(**kw)


def save(fig, path: Any) -> None:
    """Save ``fig`` to ``path`` (format from the suffix) when a path is given."""
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
