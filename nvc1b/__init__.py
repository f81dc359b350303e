"""nvc1b: train, code and evaluate billion-parameter neural video codecs (NVC-1B and its scaling family)."""

__version__ = "0.1.0"
