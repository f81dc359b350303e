"""Measured activation profiles kept on disk, so a sweep's memory plan is measured once per architecture.

Entries live in ``$NVC1B_CACHE/memory`` (default ``~/.cache/nvc1b/memory``), one JSON file per measurement, named by
a hash of what determines it: the model's settings, the measurement's settings, torch's version and the source
of the code that runs (the model, the training clip and losses, the measurement itself). Any change to those
makes a new entry; a file that cannot be read is measured again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch

log = logging.getLogger(__name__)

_PACKAGE = Path(__file__).resolve().parents[1]
SOURCES = ("model/*.py", "train/clip.py", "train/losses.py", "perf/*.py")
"""Code whose change invalidates every stored measurement (relative to the nvc1b package)."""


def cache_dir() -> Path:
    return Path(os.environ.get("NVC1B_CACHE", "~/.cache/nvc1b")).expanduser() / "memory"


def _code_digest() -> str:
    h = hashlib.sha256(torch.__version__.encode())
    for pattern in SOURCES:
        for path in sorted(_PACKAGE.glob(pattern)):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def entry_path(key: str) -> Path:
    """Where the measurement described by ``key`` (a JSON string) is stored."""
    return cache_dir() / f"{hashlib.sha256((key + _code_digest()).encode()).hexdigest()[:32]}.json"


def load_entry(key: str) -> dict | None:
    path = entry_path(key)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def store_entry(key: str, data: dict) -> None:
    """Write atomically; a cache that cannot be written is only logged."""
    path = entry_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot keep the memory measurement in %s: %s", path.parent, exc)
