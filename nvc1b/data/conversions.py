"""Named YUV 4:2:0 → RGB conversions: how an RGB test set is made from the YUV source files.

The RGB-PSNR of a codec moves with the conversion by more than the gaps papers report between models, so each
evaluation names the one it used (``run.json``) and ``nvc1b data rgb`` writes a PNG set with any of them:

- ``dcvc`` (the default): DCVC-DC/FM/SDD's released conversion, the one their published RGB numbers rest on.
  Samples are divided by the depth's largest code (255, 1023); chroma is upsampled ×2 bilinearly with
  corner-aligned sample positions (output ``i`` reads input ``i·(n−1)/(2n−1)``, as ``scipy.ndimage.zoom(order=1)``
  does); full-range BT.709 (Cb, Cr centred on 0.5); RGB clipped to [0, 1] and rounded half-to-even to 8 bits.
- ``ffmpeg-bt709``: limited range (Y 16–235, C 16–240, scaled by 2^(depth−8)) with the BT.709 matrix, chroma
  repeated 2×2 — what FFmpeg's unscaled yuv420p → rgb24 converter computes with ``in_color_matrix=bt709``.
- ``ffmpeg-default``: the same with the BT.601 matrix, FFmpeg's assumption for an untagged raw YUV input.
- ``centred``: full-range BT.709 with centre-sited bilinear chroma and edge clamping, the conversion nvc1b used
  before (and still uses to pack YUV training clips, ``nvc1b.data.video``).

The two FFmpeg entries are formulas: no FFmpeg build was compared bit for bit here, and swscale's flags
(``accurate_rnd``, ``full_chroma_int``, dithering) change its last code value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from .video import max_value, repeat_chroma


@dataclass(frozen=True)
class RGBConversion:
    """One way from YUV 4:2:0 samples to RGB."""

    name: str
    kr: float
    """Luma weight of red (0.2126 BT.709, 0.299 BT.601)."""
    kb: float
    """Luma weight of blue (0.0722 BT.709, 0.114 BT.601)."""
    full_range: bool
    """Samples span the whole code range (True) or Y 16–235, C 16–240 at 8 bits (False)."""
    chroma: str
    """Chroma upsampling: 'corner' (corner-aligned bilinear), 'nearest' (2×2 repeat), 'centred' (half-pixel)."""


CONVERSIONS: dict[str, RGBConversion] = {
    "dcvc": RGBConversion("dcvc", 0.2126, 0.0722, True, "corner"),
    "ffmpeg-bt709": RGBConversion("ffmpeg-bt709", 0.2126, 0.0722, False, "nearest"),
    "ffmpeg-default": RGBConversion("ffmpeg-default", 0.299, 0.114, False, "nearest"),
    "centred": RGBConversion("centred", 0.2126, 0.0722, True, "centred"),
}
DEFAULT_CONVERSION = "dcvc"


def get_conversion(name: str) -> RGBConversion:
    if name not in CONVERSIONS:
        raise ConfigError(f"RGB conversion '{name}' is not one of {', '.join(CONVERSIONS)}")
    return CONVERSIONS[name]


def upsample_chroma(c: Tensor, how: str) -> Tensor:
    """Chroma planes (N, h, w) → (N, 2h, 2w)."""
    if how == "nearest":
        return repeat_chroma(c)
    corner = how == "corner"
    return F.interpolate(c[:, None], scale_factor=2, mode="bilinear", align_corners=corner)[:, 0]


def yuv420_to_rgb(y: np.ndarray | Tensor, u: np.ndarray | Tensor, v: np.ndarray | Tensor, name: str = DEFAULT_CONVERSION,
                  bit_depth: int = 8) -> Tensor:
    """Integer samples Y (N, H, W), U and V (N, H/2, W/2) of ``bit_depth`` → RGB (N, 3, H, W) float64 in [0, 1]."""
    conv = get_conversion(name)
    top = float(max_value(bit_depth))
    y, u, v = (torch.as_tensor(np.asarray(p)).to(torch.float64) for p in (y, u, v))
    if conv.full_range:
        luma, cb, cr = y / top, upsample_chroma(u / top, conv.chroma) - 0.5, upsample_chroma(v / top, conv.chroma) - 0.5
    else:
        scale = float(1 << (bit_depth - 8))
        luma = (y - 16 * scale) / (219 * scale)
        cb = (upsample_chroma(u, conv.chroma) - 128 * scale) / (224 * scale)
        cr = (upsample_chroma(v, conv.chroma) - 128 * scale) / (224 * scale)
    kg = 1.0 - conv.kr - conv.kb
    r = luma + (2 - 2 * conv.kr) * cr
    b = luma + (2 - 2 * conv.kb) * cb
    g = (luma - conv.kr * r - conv.kb * b) / kg
    return torch.stack([r, g, b], dim=1).clamp(0, 1)


def to_rgb8(rgb: Tensor) -> np.ndarray:
    """RGB in [0, 1] → uint8, rounded half-to-even (``np.rint``) after scaling by 255, as DCVC's PNG writer."""
    return np.clip(np.rint(rgb.double().cpu().numpy() * 255.0), 0, 255).astype(np.uint8)


def yuv420_to_rgb8(y: np.ndarray, u: np.ndarray, v: np.ndarray, name: str = DEFAULT_CONVERSION,
                   bit_depth: int = 8) -> np.ndarray:
    """Integer YUV 4:2:0 samples (N frames) → 8-bit RGB (N, 3, H, W) by the named conversion: an RGB test set."""
    return to_rgb8(yuv420_to_rgb(y, u, v, name, bit_depth))
