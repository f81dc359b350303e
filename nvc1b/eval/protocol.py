"""The test protocol's colour spaces: what a coder is given and what its reconstruction is measured against.

- ``rgb`` (paper Table III): the RGB test set is the full-range BT.709 conversion of the YUV 4:2:0 source (or the
  PNG frames themselves), stored as 8-bit RGB as FFmpeg writes it; the model codes those 8-bit frames and its
  8-bit RGB output is measured with RGB PSNR. YUV PSNR is reported too, on the 4:2:0 conversion of both.
- ``yuv420`` (paper Table IV): the RGB model codes the BT.709 conversion of the 8-bit YUV 4:2:0 input (as floats,
  not rounded to 8 bits); its reconstruction is converted back to 8-bit YUV 4:2:0 and measured against the
  original planes with (6·Y + U + V)/8. RGB PSNR is reported too, against the 8-bit RGB conversion of the input.

Both use ``nvc1b.data.video``'s conversion, the one the data packer and the coder use.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from ..data import video
from ..data.testsets import TestSequence, TestSet, read_rgb_frames, read_yuv_frames
from ..errors import DataError
from .metrics import Reference, rgb_to_yuv420_u8

Colorspace = Literal["rgb", "yuv420"]
COLORSPACES: tuple[str, ...] = ("rgb", "yuv420")
QUALITY_METRIC = {"rgb": "psnr_rgb", "yuv420": "psnr_yuv"}
"""The PSNR each colour space's RD curves and BD-rates use (Tables III and IV)."""


def check_colorspace(colorspace: str) -> Colorspace:
    if colorspace not in COLORSPACES:
        raise ValueError(f"colorspace must be one of {', '.join(COLORSPACES)}, got {colorspace!r}")
    return colorspace  # type: ignore[return-value]


def crop_box(sequence: TestSequence, crop: tuple[int, int] | None) -> tuple[int, int, int, int]:
    """(left, top, width, height) of the centred crop of a sequence's frames (even offsets, for 4:2:0); the
    whole frame without a crop. A crop larger than the frame is a DataError."""
    if crop is None:
        return 0, 0, sequence.width, sequence.height
    width, height = crop
    if width % 2 or height % 2 or width < 2 or height < 2:
        raise DataError(f"crop {width}x{height}: width and height must be even and positive (YUV 4:2:0)")
    if width > sequence.width or height > sequence.height:
        raise DataError(f"crop {width}x{height} is larger than {sequence.name} ({sequence.width}x{sequence.height})")
    return (sequence.width - width) // 4 * 2, (sequence.height - height) // 4 * 2, width, height


def read_references(test_set: TestSet, sequence: TestSequence, count: int, colorspace: Colorspace,
                    crop: tuple[int, int] | None = None) -> Iterator[tuple[Tensor, Reference]]:
    """Per frame: the RGB frame (3, H, W) in [0, 1] a neural coder is given, and the 8-bit reference; ``crop``
    (width, height) takes the centred window of the source frames."""
    left, top, w, h = crop_box(sequence, crop)
    if colorspace == "rgb":
        for rgb in read_rgb_frames(test_set, sequence, count):
            rgb8 = video.to_uint8(rgb[:, top : top + h, left : left + w])
            x = torch.from_numpy(rgb8).float() / 255.0
            yield x, Reference(rgb8, *rgb_to_yuv420_u8(x))
        return
    rows, cols = slice(top // 2, (top + h) // 2), slice(left // 2, (left + w) // 2)  # chroma window
    for y, u, v in read_yuv_frames(test_set, sequence, count):
        y, u, v = y[top : top + h, left : left + w], u[rows, cols], v[rows, cols]
        rgb = video.yuv420_to_rgb(y[None], u[None], v[None])[0]
        yield rgb, Reference(video.to_uint8(rgb), video.to_uint8(y), video.to_uint8(u), video.to_uint8(v))


def outputs_from_rgb(x_hat: Tensor, colorspace: Colorspace) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """A neural coder's reconstruction (3, H, W) in [0, 1] as the decoder writes it in ``colorspace`` (8-bit RGB,
    or 8-bit YUV 4:2:0 converted from the float frame), with the other colour space derived from that output."""
    rgb8 = video.to_uint8(x_hat)
    if colorspace == "rgb":
        return rgb8, rgb_to_yuv420_u8(torch.from_numpy(rgb8).float() / 255.0)
    return rgb8, rgb_to_yuv420_u8(x_hat)


def outputs_from_yuv(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """A YUV 4:2:0 coder's 8-bit output planes, with their 8-bit BT.709 RGB conversion for RGB PSNR."""
    rgb = video.yuv420_to_rgb(video.to_float(y)[None], video.to_float(u)[None], video.to_float(v)[None])[0]
    return video.to_uint8(rgb), (y, u, v)


@dataclass(frozen=True)
class Protocol:
    """How every sequence of a test set is coded and measured."""

    frames: int
    """Frames coded per sequence (96 in the paper)."""
    intra_period: int
    """An I-frame every this many frames (32 in the paper)."""
    colorspace: Colorspace
    crop: tuple[int, int] | None = None
    """(width, height) of a centred window of each sequence, for quick looks; None: whole frames (the paper)."""

    def identity(self) -> dict[str, Any]:
        return {"frames": self.frames, "intra_period": self.intra_period, "colorspace": self.colorspace,
                "quality_metric": QUALITY_METRIC[self.colorspace], "crop": list(self.crop) if self.crop else None}

    def size(self, sequence: TestSequence) -> tuple[int, int]:
        """(width, height) of the coded frames of ``sequence``."""
        return crop_box(sequence, self.crop)[2:]


def check_sources(test_set: TestSet, frames: int) -> None:
    """Fail before any coding if a sequence's file is missing, is not a whole number of frames, or is short."""
    for sequence in test_set.sequences:
        path = test_set.path(sequence)
        if test_set.format == "yuv420":
            available = video.count_yuv420_frames(path, sequence.width, sequence.height)
        else:
            available = len(video.list_png_frames(path))
        if available < frames:
            raise DataError(f"{path}: holds {available} frames, {frames} are coded")


def resolve_protocol(test_set: TestSet, frames: int | None = None, intra_period: int | None = None,
                     colorspace: str = "rgb", crop: tuple[int, int] | None = None) -> Protocol:
    """The protocol for ``test_set``: frames and intra period default to the set's YAML (-1 there: one I-frame)."""
    frames = test_set.frames if frames is None else frames
    intra_period = test_set.intra_period if intra_period is None else intra_period
    if frames < 1:
        raise DataError(f"{test_set.name}: frames must be at least 1, got {frames}")
    if intra_period == -1:
        intra_period = frames
    if intra_period < 1:
        raise DataError(f"{test_set.name}: intra period must be at least 1 (or -1 in the YAML), got {intra_period}")
    for sequence in test_set.sequences:
        if sequence.frames < frames:
            raise DataError(
                f"{test_set.name}: {sequence.name} has {sequence.frames} frames, fewer than the {frames} to code"
            )
        crop_box(sequence, crop)
    return Protocol(frames, intra_period, check_colorspace(colorspace), crop)
