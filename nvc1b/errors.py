"""Errors a user can cause. Each carries a one-line message naming the file, key, shard, frame or offset.

The CLI prints them as ``nvc1b: error: <message>`` and exits with ``exit_code``; anything else is a bug
and stays a traceback.
"""

from __future__ import annotations


class NvcError(Exception):
    """Base class of user-facing errors."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(" ".join(message.split()))  # always one line


class ConfigError(NvcError):
    """A preset, schedule, cluster profile or sweep file is missing, malformed or inconsistent."""

    exit_code = 2


class WeightsError(NvcError):
    """A weights file is missing, unreadable, or does not fit the model it is loaded into."""

    exit_code = 2


class DivergedError(NvcError):
    """Training diverged: a stage kept producing bad steps after its allowed rollbacks."""


class DataError(NvcError):
    """A dataset, shard, clip or raw video file is missing or unusable."""


class BitstreamError(NvcError):
    """A bitstream is truncated, corrupted or does not belong to the given checkpoint."""
