"""Test-set descriptions (``data/*.yaml``): which sequences, their size, frame rate, length and bit depth, and the
coding protocol (frames to code, intra period); plus readers that yield a sequence's frames as RGB or YUV 4:2:0.

A set's ``root`` may be absolute, relative to the YAML file, or use ``~``, ``${VAR}`` and ``${VAR:-default}``;
the HEVC/UVG/MCL-JCV files use ``${NVC1B_TEST_DATA}``, the folder that holds HEVC_B/, UVG/, … as DCVC lays them out.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import yaml
from pydantic import Field, model_validator
from torch import Tensor

from ..config.loading import Strict, read_yaml, validate
from ..errors import ConfigError, DataError
from . import video
from .conversions import DEFAULT_CONVERSION, yuv420_to_rgb8

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
    """yuv420: raw 4:2:0 files; png: one folder of 8-bit RGB frames per sequence."""
    bit_depth: Literal[8, 10] = 8
    """Bits per sample of the yuv420 files: 8 (one byte each) or 10 (two bytes each, little-endian)."""
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


def check_source(test_set: TestSet, sequence: TestSequence) -> int:
    """Frames in a sequence's source. A YUV file must be a whole number of frames of the declared size and bit
    depth and hold exactly the declared frame count (a 10-bit file read as 8-bit would hold twice as many)."""
    path = test_set.path(sequence)
    if test_set.format == "png":
        return len(video.list_png_frames(path))
    depth = test_set.bit_depth
    available = video.count_yuv420_frames(path, sequence.width, sequence.height, depth)
    if available != sequence.frames:
        raise DataError(
            f"{path}: holds {available} {sequence.width}x{sequence.height} {depth}-bit frames but the YAML declares "
            f"{sequence.frames} (wrong bit_depth, size or frame count?)"
        )
    return available


def source_depth(test_set: TestSet) -> int:
    """Bits per sample of the YUV planes ``read_yuv_samples`` yields (8 for PNG sets)."""
    return test_set.bit_depth if test_set.format == "yuv420" else 8


def read_yuv_samples(test_set: TestSet, sequence: TestSequence, count: int | None = None, start: int = 0
                     ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Integer planes Y (H, W), U and V (H/2, W/2) of ``count`` frames (default: the set's ``frames``): the file's
    samples (uint8, or uint16 for 10 bits); PNG sets give the 8-bit BT.709 4:2:0 conversion of their frames."""
    count = test_set.frames if count is None else count
    if test_set.format == "png":
        for rgb in read_rgb_frames(test_set, sequence, count, start):
            y, u, v = video.rgb_to_yuv420(rgb[None])
            yield video.to_uint8(y[0]), video.to_uint8(u[0]), video.to_uint8(v[0])
        return
    path, w, h = test_set.path(sequence), sequence.width, sequence.height
    for first in range(start, start + count, CHUNK):
        y, u, v = video.read_yuv420(path, w, h, first, min(CHUNK, start + count - first), test_set.bit_depth)
        for i in range(y.shape[0]):
            yield y[i], u[i], v[i]


def read_yuv_frames(test_set: TestSet, sequence: TestSequence, count: int | None = None, start: int = 0
                    ) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Float planes Y (H, W), U and V (H/2, W/2) in [0, 1] (samples over 255 or 1023, as DCVC reads them)."""
    depth = source_depth(test_set)
    for y, u, v in read_yuv_samples(test_set, sequence, count, start):
        yield video.to_float(y, depth), video.to_float(u, depth), video.to_float(v, depth)


def read_rgb_frames(test_set: TestSet, sequence: TestSequence, count: int | None = None, start: int = 0,
                    conversion: str = DEFAULT_CONVERSION) -> Iterator[Tensor]:
    """RGB frames (3, H, W) float32 in [0, 1] of the 8-bit RGB test set: PNG frames as stored, YUV files through
    the named conversion (``nvc1b.data.conversions``, DCVC's by default) and rounded to 8 bits."""
    count = test_set.frames if count is None else count
    if test_set.format == "yuv420":
        planes: list[tuple[np.ndarray, ...]] = []
        for yuv in read_yuv_samples(test_set, sequence, count, start):
            planes.append(yuv)
            if len(planes) == CHUNK:
                yield from _to_rgb(planes, conversion, test_set.bit_depth)
                planes = []
        if planes:
            yield from _to_rgb(planes, conversion, test_set.bit_depth)
        return
    folder = test_set.path(sequence)
    paths = video.list_png_frames(folder)
    if start + count > len(paths):
        raise DataError(f"{folder}: frames {start}..{start + count - 1} requested but the folder has {len(paths)}")
    for p in paths[start : start + count]:
        yield torch.from_numpy(video.read_png(p).copy()).permute(2, 0, 1).float().div_(255.0)  # Pillow arrays are read-only


def _to_rgb(planes: list[tuple[np.ndarray, ...]], conversion: str, bit_depth: int) -> Iterator[Tensor]:
    y, u, v = (np.stack(p) for p in zip(*planes, strict=True))
    yield from torch.from_numpy(yuv420_to_rgb8(y, u, v, conversion, bit_depth)).float().div_(255.0)


def write_rgb_test_set(test_set: TestSet, out: str | Path, conversion: str = DEFAULT_CONVERSION,
                       frames: int | None = None) -> Path:
    """Write the RGB PNG set of a YUV test set by the named conversion: ``out/<SEQ>/im00001.png`` … and
    ``out/<name>.yaml`` (a ``png`` test set, root '.'). Each folder appears whole (written under a temporary name,
    then renamed) and the YAML last; returns the YAML's path."""
    if test_set.format != "yuv420":
        raise DataError(f"{test_set.name}: already an RGB (png) test set")
    for sequence in test_set.sequences:
        check_source(test_set, sequence)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sequences = []
    for sequence in test_set.sequences:
        count = sequence.frames if frames is None else min(frames, sequence.frames)
        folder, tmp = out / sequence.name, out / f".{sequence.name}.tmp-{os.getpid()}"
        if folder.exists():
            raise DataError(f"{folder}: exists; remove it or choose another --out")
        tmp.mkdir()
        try:
            for i, rgb in enumerate(read_rgb_frames(test_set, sequence, count, conversion=conversion)):
                video.write_png(tmp / f"im{i + 1:05d}.png", video.to_uint8(rgb).transpose(1, 2, 0))
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        sequences.append(sequence.model_copy(update={"file": sequence.name, "frames": count}))
    frames_coded = min(test_set.frames, *(s.frames for s in sequences))
    rgb_set = test_set.model_copy(update={
        "format": "png", "root": ".", "sequences": sequences, "frames": frames_coded, "bit_depth": 8,
        "description": f"{test_set.description or test_set.name}; RGB by the '{conversion}' conversion".strip("; "),
    })
    path = out / f"{test_set.name}.yaml"
    tmp_yaml = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp_yaml.write_text(yaml.safe_dump(rgb_set.model_dump(), sort_keys=False))
    os.replace(tmp_yaml, path)
    return path
