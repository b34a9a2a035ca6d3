"""What lobfast raises and warns: :class:`LobError` (the C core's error, a ``ValueError``),
:class:`LobWarning`, and the ImportError of a missing optional dependency.  The bottom layer:
imports nothing of lobfast but the C module."""

from __future__ import annotations

import importlib

from ._core import LobError

__all__ = ["LobError", "LobWarning", "lob_error"]


class LobWarning(UserWarning):
    """Data was lost or looks suspicious, but reading went on (e.g. a truncated file)."""


def lob_error(message: str, path: str | None = None) -> LobError:
    """A LobError with the ``path``/``line``/``offset`` attributes the C errors carry."""
    e = LobError(message)
    e.path, e.line, e.offset = path, 0, 0
    return e


def _require(module: str, extra: str):
    """``module`` imported, or an ImportError saying which extra of lobfast installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"{module} is needed for this; install it with pip install 'lobfast[{extra}]'") from e
