"""The package version, in a module of its own so that any module may read it without
importing the package's ``__init__``.  The bottom layer: imports nothing."""

__version__ = "0.1.0"
