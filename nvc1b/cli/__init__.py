"""The ``nvc1b`` command: a thin shell over library functions."""

from .main import main

__all__ = ["main"]
