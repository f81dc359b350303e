"""Test-set descriptions (``data/*.yaml``): which sequences, their size, frame rate and length, and the coding
protocol (frames to code, intra period); plus readers that yield a sequence's frames as RGB or YUV 4:2:0.

A set's ``root`` may be absolute, relative to the YAML file, or use ``~``, ``${VAR}`` and ``${VAR:-default}``;
the HEVC/UVG/MCL-JCV files use ``${NVC1B_TEST_DATA}``, the folder that holds HEVC_B/, UVG/, … as DCVC lays them out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor

from ..config.loading import Strict, read_yaml, validate
from ..errors import ConfigError, DataError
from . import video

CHUNK = 8  # frames read from a YUV file at a time


class TestSequence(Strict):
    __test__ = False  # not a pytest class

    name: str
    """Sequence name as papers write it (BQTerrace)."""
    file: str
    """YUV file (or PNG folder) under the set's root, named as in DCVC's test configurations."""
    width: int = Field(gt=0)
    """Frame width in pixels."""
    height: int = Field(gt=0)
    """Frame height in pixels."""
    fps: float = Field(gt=0)
    """Frame rate."""
    frames: int = Field(gt=0)
    """Frames in the source file."""


class TestSet(Strict):
    __test__ = False

    name: str
    """Short name (HEVC_B, UVG, MCL-JCV, synthetic)."""
    description: str = ""
    """One line: what the set is and where it comes from."""
    format: Literal["yuv420", "png"]
    """yuv420: raw 8-bit 4:2:0 files; png: one folder of RGB frames per sequence."""
    root: str
    """Folder of the sequences: absolute, relative to this YAML file, or with ~, ${VAR}, ${VAR:-default}."""
    frames: int = Field(gt=0)
    """Frames coded per sequence (96 in the NVC-1B paper)."""
    intra_period: int = Field(ge=-1)
    """Frames from one I-frame to the next (32 in the paper; -1: only the first frame is intra)."""
    sequences: list[TestSequence] = Field(min_length=1)
    """The sequences, in reporting order."""

    @model_validator(mode="after")
    def _check(self) -> TestSet:
        for i, s in enumerate(self.sequences):
            if s.frames < self.frames:
                raise ValueError(f"sequences.{i} ({s.name}) has {s.frames} frames, fewer than the {self.frames} to code")
            if self.format == "yuv420" and (s.width % 2 or s.height % 2):
                raise ValueError(f"sequences.{i} ({s.name}) is {s.width}x{s.height}; YUV 4:2:0 needs even sizes")
        names = [s.name for s in self.sequences]
        if len(set(names)) != len(names):
            raise ValueError("two sequences share a name")
        return self

    def path(self, sequence: TestSequence) -> Path:
        """Where the sequence's file (or folder) lies; ``root`` is already resolved by ``load_test_set``."""
        return Path(self.root) / sequence.file

    def sequence(self, name: str) -> TestSequence:
        for s in self.sequences:
            if s.name == name:
                return s
        raise KeyError(name)


_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def resolve_root(root: str, yaml_path: Path) -> Path:
    """Expand ``${VAR}``, ``${VAR:-default}`` and ``~``; a relative result is relative to the YAML file's folder."""

    def sub(match: re.Match) -> str:
        value = os.environ.get(match.group(1)) or match.group(2)
        if value is None:
            raise ConfigError(f"{yaml_path}: key 'root': environment variable {match.group(1)} is not set")
        return value

    path = Path(os.path.expanduser(_VAR.sub(sub, root)))
    return path if path.is_absolute() else (yaml_path.parent / path).resolve()


def load_test_set(path: str | Path, root: str | Path | None = None) -> TestSet:
    """Read and validate a test-set YAML; ``root`` (if given) replaces the file's root. Errors name file and key."""
    path = Path(path)
    data = read_yaml(path)
    if root is not None:
        data = {**data, "root": str(root)}
    test_set = validate(TestSet, data, str(path))
    return test_set.model_copy(update={"root": str(resolve_root(test_set.root, path))})


def read_yuv_frames(test_set: TestSet, sequence: TestSequence, count: int | None = None, start: int = 0
                    ) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Float planes Y (H, W), U and V (H/2, W/2) in [0, 1] of ``count`` frames (default: the set's ``frames``)."""
    count = test_set.frames if count is None else count
    if test_set.format == "png":
        for rgb in read_rgb_frames(test_set, sequence, count, start):
            y, u, v = video.rgb_to_yuv420(rgb[None])
            yield y[0], u[0], v[0]
        return
    path, w, h = test_set.path(sequence), sequence.width, sequence.height
    for first in range(start, start + count, CHUNK):
        y, u, v = video.read_yuv420(path, w, h, first, min(CHUNK, start + count - first))
        y, u, v = video.to_float(y), video.to_float(u), video.to_float(v)
        for i in range(y.shape[0]):
            yield y[i], u[i], v[i]


def read_rgb_frames(test_set: TestSet, sequence: TestSequence, count: int | None = None, start: int = 0
                    ) -> Iterator[Tensor]:
    """RGB frames (3, H, W) float32 in [0, 1]; YUV files go through the project's BT.709 conversion."""
    count = test_set.frames if count is None else count
    if test_set.format == "yuv420":
        planes: list[tuple[Tensor, Tensor, Tensor]] = []
        for yuv in read_yuv_frames(test_set, sequence, count, start):
            planes.append(yuv)
            if len(planes) == CHUNK:
                yield from _to_rgb(planes)
                planes = []
        yield from _to_rgb(planes)
        return
    folder = test_set.path(sequence)
    paths = video.list_png_frames(folder)
    if start + count > len(paths):
        raise DataError(f"{folder}: frames {start}..{start + count - 1} requested but the folder has {len(paths)}")
    for p in paths[start : start + count]:
        yield torch.from_numpy(video.read_png(p).copy()).permute(2, 0, 1).float().div_(255.0)  # Pillow arrays are read-only


def _to_rgb(planes: list[tuple[Tensor, Tensor, Tensor]]) -> Iterator[Tensor]:
    if planes:
        y, u, v = (torch.stack(p) for p in zip(*planes, strict=False))
        yield from video.yuv420_to_rgb(y, u, v)
