"""The shard manifest: which tar shards make a dataset, how many clips each holds, and their checksums.

``manifest.json`` sits next to its shards (paths inside are relative to it) and is written last and atomically,
so a folder with a manifest is a finished dataset.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Optional

from pydantic import Field, ValidationError

from ..config.loading import Strict, format_validation_error
from ..errors import DataError

MANIFEST_NAME = "manifest.json"
FORMAT = "nvc1b-shards/1"


class ShardEntry(Strict):
    path: str
    """Shard file, relative to the manifest's folder."""
    clips: int = Field(ge=1)
    """Samples (clips) in the shard."""
    bytes: int = Field(ge=0)
    """File size when written."""
    sha256: str
    """Hex SHA-256 of the whole file."""


class ClipList(Strict):
    """The clip list (such as Vimeo-90k's ``sep_trainlist.txt``) a pack took its clips from."""

    path: str
    """The list file as given (or found in the Vimeo root)."""
    sha256: str
    """Hex SHA-256 of the list file when packed."""
    names: list[str]
    """The clip folders it named, in packing order."""


class Manifest(Strict):
    format: str = FORMAT
    """Always 'nvc1b-shards/1'."""
    source: str
    """What was packed (command and input)."""
    frames_per_clip: int = Field(ge=1)
    """Frames in a full clip (7 for Vimeo septuplets)."""
    png_level: int = Field(ge=0, le=9)
    """zlib level of the stored PNG frames (0 = stored: fastest to decode)."""
    shards: list[ShardEntry]
    """Shards in packing order."""
    clip_list: Optional[ClipList] = None
    """The clip list a Vimeo pack used (None: no list, every folder was packed with --all, or not a Vimeo pack)."""

    @property
    def clips(self) -> int:
        return sum(s.clips for s in self.shards)


def sha256_file(path: str | Path, block: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_path(path: str | Path) -> Path:
    """Accept a manifest file or the folder that holds ``manifest.json``."""
    path = Path(path)
    return path / MANIFEST_NAME if path.is_dir() else path


def write_manifest(path: str | Path, manifest: Manifest) -> Path:
    """Write atomically: a temporary file in the same folder, then os.replace."""
    path = manifest_path(path)
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(manifest.model_dump_json(indent=1))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_manifest(path: str | Path) -> Manifest:
    """Parse and validate a manifest; any problem (missing, malformed, no clips) is a one-line DataError."""
    path = manifest_path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: manifest not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read manifest ({exc})") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: malformed manifest JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: manifest is not a JSON object")
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise DataError(format_validation_error(exc, str(path))) from None
    if manifest.format != FORMAT:
        raise DataError(f"{path}: manifest format '{manifest.format}' is not '{FORMAT}'")
    if not manifest.shards:
        raise DataError(f"{path}: manifest lists no shards (empty dataset)")
    return manifest


def shard_paths(path: str | Path, manifest: Manifest | None = None, must_exist: bool = True) -> list[Path]:
    """Absolute shard paths of a manifest; a missing shard is an immediate DataError naming it."""
    path = manifest_path(path)
    manifest = manifest or read_manifest(path)
    paths = [path.parent / s.path for s in manifest.shards]
    if must_exist:
        for p in paths:
            if not p.is_file():
                raise DataError(f"{path}: shard {p} not found")
    return paths


def count_clips(path: str | Path) -> int:
    """Clips in a packed dataset (the engine derives steps per epoch from this)."""
    return read_manifest(path).clips


def verify_manifest(path: str | Path) -> list[str]:
    """Problems found by re-hashing every shard (empty list: all shards match their size and checksum)."""
    path = manifest_path(path)
    manifest = read_manifest(path)
    problems = []
    for entry, shard in zip(manifest.shards, shard_paths(path, manifest, must_exist=False), strict=False):
        if not shard.is_file():
            problems.append(f"{shard}: missing")
        elif shard.stat().st_size != entry.bytes:
            problems.append(f"{shard}: {shard.stat().st_size} bytes, manifest says {entry.bytes}")
        elif sha256_file(shard) != entry.sha256:
            problems.append(f"{shard}: checksum differs from the manifest")
    return problems
