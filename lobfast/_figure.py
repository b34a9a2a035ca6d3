"""The Figure class of lobfast's plots (imported only when a figure is made: matplotlib is optional)."""

from __future__ import annotations

import io

from matplotlib.figure import Figure as _MplFigure


class Figure(_MplFigure):
    """A ``matplotlib.figure.Figure`` (made without pyplot: no global state, nothing to close)
    that Jupyter shows as a PNG when it is a cell's result.

    A plain ``Figure`` only shows in Jupyter once pyplot has drawn a figure of its own (that
    is when IPython's inline backend registers a display for figures); until then a cell
    shows ``<Figure size ... with N Axes>``. Once registered, that display takes precedence
    over ``_repr_png_``, so the figure still shows once, in the format the user configured.
    """

    def _repr_png_(self) -> bytes | None:
        if not self.axes:
            return None
        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()
