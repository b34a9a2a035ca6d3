"""The package version (one place: lobfast/__init__.py and saved files read it here)."""

__version__ = "0.1.0"
