"""Reading clips out of tar shards by random access.

A shard is a plain WebDataset tar: for each clip ``KEY.000.png … KEY.006.png`` (RGB, 8 bit) and ``KEY.json``
(``{"source", "width", "height", "frames"}``). The index of a shard (member offsets) comes from its tar headers
alone, so a loader can seek straight to any clip; a truncated shard yields the clips it still holds in full.
Frames decode with libspng (pyspng), several times faster than Pillow on the same bytes.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyspng
from webdataset.tariterators import base_plus_ext

from ..errors import DataError
from .manifest import manifest_path, read_manifest, shard_paths

FRAME_EXT = re.compile(r"(\d+)\.png")


class ClipError(Exception):
    """One clip cannot be used (undecodable, truncated, too few frames, too small); the loader skips it."""


@dataclass
class ClipEntry:
    """Where one clip's members lie in its shard: extension → (data offset, size)."""

    key: str
    members: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def frame_exts(self) -> list[str]:
        exts = [e for e in self.members if FRAME_EXT.fullmatch(e)]
        return sorted(exts, key=lambda e: int(FRAME_EXT.fullmatch(e).group(1)))


@dataclass
class ShardIndex:
    """Clips of one shard in file order, and why the index stopped early (None when the tar ended cleanly)."""

    path: Path
    size: int
    clips: list[ClipEntry]
    problem: str | None = None


def index_shard(path: str | Path) -> ShardIndex:
    """Scan the tar headers (seeking over the data) and group members into clips by key."""
    path = Path(path)
    size = path.stat().st_size
    clips: list[ClipEntry] = []
    problem = None
    try:
        with tarfile.open(path, mode="r:") as tar:
            while True:
                try:
                    info = tar.next()
                except (tarfile.ReadError, EOFError, OSError) as exc:
                    problem = f"tar stops at byte {tar.offset} ({exc})"
                    break
                if info is None:
                    break
                if not info.isreg():
                    continue
                key, ext = base_plus_ext(info.name)
                if key is None:
                    continue
                if not clips or clips[-1].key != key:
                    clips.append(ClipEntry(key))
                if info.offset_data + info.size > size:
                    problem = f"member {info.name} runs past the end of the file ({size} bytes)"
                    break
                clips[-1].members[ext.lower()] = (info.offset_data, info.size)
    except (tarfile.ReadError, EOFError, OSError) as exc:
        problem = f"not a readable tar ({exc})"
    return ShardIndex(path, size, clips, problem)


class ShardReader:
    """Random access to clips of many shards: caches indexes and keeps a few files open (one reader per process)."""

    def __init__(self, max_open: int = 8):
        self.max_open = max_open
        self._indexes: dict[Path, ShardIndex] = {}
        self._files: OrderedDict[Path, int] = OrderedDict()
        self.bytes_read = 0

    def index(self, path: Path) -> ShardIndex:
        if path not in self._indexes:
            try:
                self._indexes[path] = index_shard(path)
            except OSError as exc:  # vanished or unreadable since the loader started: its clips count as bad
                raise ClipError(f"shard unreadable ({exc.strerror or exc})") from None
        return self._indexes[path]

    def entry(self, path: Path, number: int) -> ClipEntry:
        """The ``number``-th clip of a shard; ClipError when the shard no longer holds it."""
        index = self.index(path)
        if number < len(index.clips):
            return index.clips[number]  # a clip cut short by truncation fails its metadata check instead
        raise ClipError(f"clip #{number} missing: {index.problem or f'shard holds only {len(index.clips)} clips'}")

    def _fd(self, path: Path) -> int:
        if path in self._files:
            self._files.move_to_end(path)
            return self._files[path]
        if len(self._files) >= self.max_open:
            os.close(self._files.popitem(last=False)[1])
        self._files[path] = os.open(path, os.O_RDONLY)
        return self._files[path]

    def read(self, path: Path, entry: ClipEntry, ext: str) -> bytes:
        if ext not in entry.members:
            raise ClipError(f"no member '{ext}'")
        offset, size = entry.members[ext]
        try:
            data = os.pread(self._fd(path), size, offset)
        except OSError as exc:
            raise ClipError(f"cannot read member '{ext}' ({exc.strerror or exc})") from None
        if len(data) != size:
            raise ClipError(f"member '{ext}' is cut short ({len(data)} of {size} bytes)")
        self.bytes_read += size
        return data

    def metadata(self, path: Path, entry: ClipEntry) -> dict:
        """The clip's JSON metadata, checked against its frame members."""
        try:
            meta = json.loads(self.read(path, entry, "json"))
            width, height, frames = int(meta["width"]), int(meta["height"]), int(meta["frames"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ClipError(f"bad metadata ({exc})") from None
        if frames != len(entry.frame_exts):
            raise ClipError(f"metadata says {frames} frames, the shard holds {len(entry.frame_exts)}")
        return {**meta, "width": width, "height": height, "frames": frames}

    def frame(self, path: Path, entry: ClipEntry, index: int) -> np.ndarray:
        """Frame ``index`` of a clip as (H, W, 3) uint8."""
        ext = entry.frame_exts[index]
        try:
            rgb = pyspng.load(self.read(path, entry, ext))
        except RuntimeError as exc:
            raise ClipError(f"frame {ext} does not decode ({exc})") from None
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ClipError(f"frame {ext} is {rgb.dtype} {rgb.shape}, not 8-bit RGB")
        return rgb

    def clip(self, path: Path, number: int) -> tuple[str, dict, np.ndarray]:
        """(key, metadata, frames (N, H, W, 3) uint8) of the ``number``-th clip of a shard."""
        entry = self.entry(path, number)
        meta = self.metadata(path, entry)
        frames = np.stack([self.frame(path, entry, t) for t in range(meta["frames"])])
        if frames.shape[1:3] != (meta["height"], meta["width"]):
            raise ClipError(f"frames are {frames.shape[2]}x{frames.shape[1]}, metadata says {meta['width']}x{meta['height']}")
        return entry.key, meta, frames

    def close(self) -> None:
        while self._files:
            os.close(self._files.popitem()[1])

    def __enter__(self) -> ShardReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def iter_clips(manifest: str | Path) -> Iterator[tuple[str, dict, np.ndarray]]:
    """Every clip of a packed dataset in packing order: (key, metadata, frames (N, H, W, 3) uint8)."""
    path = manifest_path(manifest)
    m = read_manifest(path)
    with ShardReader() as reader:
        for entry, shard in zip(m.shards, shard_paths(path, m), strict=False):
            for number in range(entry.clips):
                try:
                    yield reader.clip(shard, number)
                except ClipError as exc:
                    raise DataError(f"{shard}: clip #{number}: {exc}") from None
