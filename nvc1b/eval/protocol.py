"""The test protocol's colour spaces: what a coder is given and what its reconstruction is measured against.

- ``rgb`` (paper Table III): the RGB test set is the 8-bit RGB conversion of the YUV 4:2:0 source by the
  protocol's named conversion (``nvc1b.data.conversions``: DCVC's released one by default, as DCVC-DC/FM/SDD's
  published RGB numbers use), or the PNG frames themselves; the model codes those frames and its output is
  measured with RGB PSNR. YUV PSNR is reported too, on the BT.709 4:2:0 conversion of both.
- ``yuv420`` (paper Table IV, as DCVC-DC/FM run it): the 4:2:0 planes are upsampled to 4:4:4 by repeating each
  chroma sample 2×2 and coded directly (Y, U, V as the three channels) by a model trained for YUV (a schedule
  with ``colorspace: yuv``); the reconstruction's chroma is downsampled by 2×2 means and measured against the
  source planes with (6·Y + U + V)/8. A lossless codec round-trips exactly.
- ``yuv420-via-rgb``: the RGB-model path for YUV test sets: the model codes the float RGB conversion of the
  4:2:0 input (clamped to [0, 1]) and its output is converted back. The clamping and the chroma resampling
  cap the PSNR a lossless codec could reach; each result records that cap (``psnr_yuv_cap``).

Every PSNR is measured on the integer output and on the float output (``psnr_*_float``); ``psnr`` chooses the one
RD curves and BD-rates use: ``float`` (default, as DCVC publishes) or ``integer``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..data import video
from ..data.conversions import CONVERSIONS, DEFAULT_CONVERSION, to_rgb8, yuv420_to_rgb
from ..data.testsets import (
    TestSequence,
    TestSet,
    check_source,
    read_rgb_frames,
    read_yuv_samples,
    source_depth,
)
from ..errors import ConfigError, DataError
from .metrics import Planes

Colorspace = Literal["rgb", "yuv420", "yuv420-via-rgb"]
COLORSPACES: tuple[str, ...] = ("rgb", "yuv420", "yuv420-via-rgb")
PSNR_KINDS: tuple[str, ...] = ("float", "integer")
"""Which output the RD curves' PSNR is measured on: before rounding (DCVC's way) or as written to disk."""


def quality_metric(colorspace: str, psnr: str = "float") -> str:
    """The result field RD curves and BD-rates use: RGB PSNR for ``rgb`` (Table III), YUV PSNR otherwise
    (Table IV), on the float or the integer output."""
    base = "psnr_rgb" if colorspace == "rgb" else "psnr_yuv"
    return f"{base}_float" if psnr == "float" else base


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


def planes_from_rgb(rgb: Tensor) -> Planes:
    """A frame given as RGB (3, H, W) in [0, 1]: 8-bit RGB, and the BT.709 4:2:0 planes of that 8-bit RGB
    (integer) and of the float frame (float)."""
    rgb = rgb.detach().cpu().clamp(0, 1)
    rgb8 = video.to_uint8(rgb)
    y, u, v = video.rgb_to_yuv420(torch.from_numpy(rgb8).float()[None] / 255.0)
    yf, uf, vf = video.rgb_to_yuv420(rgb.double()[None])
    return Planes(rgb8, (video.to_uint8(y[0]), video.to_uint8(u[0]), video.to_uint8(v[0])), rgb.double().numpy(),
                  (yf[0].numpy(), uf[0].numpy(), vf[0].numpy()))


def planes_from_yuv(y: Tensor, u: Tensor, v: Tensor, depth: int, conversion: str) -> Planes:
    """A frame given as float 4:2:0 planes in [0, 1]: samples at ``depth`` bits, and its RGB by ``conversion``
    (8-bit from the integer samples, float from the float planes)."""
    top = float(video.max_value(depth))
    yf, uf, vf = (p.detach().double().cpu().clamp(0, 1) for p in (y, u, v))
    ints = tuple((p * top).round() for p in (yf, uf, vf))
    dtype = np.uint8 if depth <= 8 else np.uint16
    rgb8 = to_rgb8(yuv420_to_rgb(*(p[None] for p in ints), conversion, depth)[0])
    rgb_float = yuv420_to_rgb(*((p * top)[None] for p in (yf, uf, vf)), conversion, depth)[0].numpy()
    return Planes(rgb8, tuple(p.numpy().astype(dtype) for p in ints), rgb_float,
                  (yf.numpy(), uf.numpy(), vf.numpy()), depth)


def yuv444_nearest(y: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """4:2:0 planes (H, W), (H/2, W/2) ×2 → (3, H, W): each chroma sample repeated 2×2 (DCVC-DC/FM's input)."""
    return torch.stack([y, video.repeat_chroma(u), video.repeat_chroma(v)])


def yuv420_mean(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(3, H, W) YUV 4:4:4 → 4:2:0 planes, chroma by 2×2 means (DCVC-DC/FM's output)."""
    chroma = F.avg_pool2d(x[None, 1:].double(), 2)[0]
    return x[0], chroma[0], chroma[1]


def read_references(test_set: TestSet, sequence: TestSequence, protocol: Protocol) -> Iterator[tuple[Tensor, Planes]]:
    """Per frame: the frame (3, H, W) float32 a neural coder is given (RGB, or YUV 4:4:4 for ``yuv420``) and the
    reference planes; the protocol's crop takes the centred window of the source frames."""
    left, top, w, h = crop_box(sequence, protocol.crop)
    if protocol.colorspace == "rgb":
        for rgb in read_rgb_frames(test_set, sequence, protocol.frames, conversion=protocol.rgb_conversion):
            x = rgb[:, top : top + h, left : left + w].contiguous()
            yield x, planes_from_rgb((x.double() * 255).round() / 255)  # the 8-bit frame exactly, in float64
        return
    depth = source_depth(test_set)
    scale = float(video.max_value(depth))
    rows, cols = slice(top // 2, (top + h) // 2), slice(left // 2, (left + w) // 2)  # chroma window
    for y, u, v in read_yuv_samples(test_set, sequence, protocol.frames):
        y, u, v = (torch.from_numpy(p.astype(np.float64)) / scale for p in (y[top : top + h, left : left + w],
                                                                               u[rows, cols], v[rows, cols]))
        reference = planes_from_yuv(y, u, v, depth, protocol.rgb_conversion)
        if protocol.colorspace == "yuv420":
            x = yuv444_nearest(y, u, v)
        else:
            x = yuv420_to_rgb(y[None] * scale, u[None] * scale, v[None] * scale, protocol.rgb_conversion, depth)[0]
        yield x.float(), reference


def output_planes(x_hat: Tensor, protocol: Protocol, depth: int) -> Planes:
    """A neural coder's reconstruction (3, H, W) as the decoder writes it in the protocol's colour space: RGB
    (``rgb``), YUV 4:4:4 downsampled to 4:2:0 (``yuv420``), or RGB converted to 4:2:0 (``yuv420-via-rgb``)."""
    if protocol.colorspace == "rgb":
        return planes_from_rgb(x_hat)
    if protocol.colorspace == "yuv420":
        return planes_from_yuv(*yuv420_mean(x_hat.detach().cpu().clamp(0, 1)), depth, protocol.rgb_conversion)
    y, u, v = video.rgb_to_yuv420(x_hat.detach().double().cpu().clamp(0, 1)[None])
    return planes_from_yuv(y[0], u[0], v[0], depth, protocol.rgb_conversion)


def planes_from_samples(y: np.ndarray, u: np.ndarray, v: np.ndarray, depth: int, protocol: Protocol) -> Planes:
    """A YUV 4:2:0 coder's integer output planes (an anchor's decoded frame)."""
    scale = float(video.max_value(depth))
    return planes_from_yuv(*(torch.from_numpy(p.astype(np.float64)) / scale for p in (y, u, v)), depth,
                           protocol.rgb_conversion)


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
    rgb_conversion: str = DEFAULT_CONVERSION
    """The YUV → RGB conversion of every RGB frame made from YUV (``nvc1b.data.conversions``)."""
    psnr: str = "float"
    """The output the RD curves' PSNR is measured on: 'float' (DCVC's way) or 'integer' (as written to disk)."""

    def identity(self) -> dict[str, Any]:
        return {"frames": self.frames, "intra_period": self.intra_period, "colorspace": self.colorspace,
                "rgb_conversion": self.rgb_conversion, "psnr": self.psnr,
                "quality_metric": quality_metric(self.colorspace, self.psnr),
                "crop": list(self.crop) if self.crop else None}

    def size(self, sequence: TestSequence) -> tuple[int, int]:
        """(width, height) of the coded frames of ``sequence``."""
        return crop_box(sequence, self.crop)[2:]


def check_sources(test_set: TestSet, frames: int) -> None:
    """Fail before any coding if a sequence's file is missing, does not match its declared size, bit depth and
    frame count (``check_source``), or is short."""
    for sequence in test_set.sequences:
        available = check_source(test_set, sequence)
        if available < frames:
            raise DataError(f"{test_set.path(sequence)}: holds {available} frames, {frames} are coded")


def resolve_protocol(test_set: TestSet, frames: int | None = None, intra_period: int | None = None,
                     colorspace: str = "rgb", crop: tuple[int, int] | None = None,
                     rgb_conversion: str = DEFAULT_CONVERSION, psnr: str = "float") -> Protocol:
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
    if rgb_conversion not in CONVERSIONS:
        raise ConfigError(f"RGB conversion '{rgb_conversion}' is not one of {', '.join(CONVERSIONS)}")
    if psnr not in PSNR_KINDS:
        raise ConfigError(f"psnr must be one of {', '.join(PSNR_KINDS)}, got {psnr!r}")
    return Protocol(frames, intra_period, check_colorspace(colorspace), crop, rgb_conversion, psnr)
