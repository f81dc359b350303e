"""Quality metrics of the test protocol: PSNR of RGB, per-plane PSNR of YUV 4:2:0 and the compound YUV PSNR
(6·Y + U + V)/8 of DCVC and the paper, and MS-SSIM (torchmetrics) on RGB.

Each PSNR is measured twice: on the integer output (what a decoder writes to disk) and on the float output
before rounding (what DCVC-DC/FM's test scripts measure and publish); see ``FrameQuality``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..data import video

PEAK = 255.0
YUV_WEIGHTS = (6.0, 1.0, 1.0)
"""Weights of Y, U and V in the compound YUV PSNR (paper Section V-A4, after DCVC)."""
MS_SSIM_MIN_SIDE = 161
"""torchmetrics' five-scale MS-SSIM with an 11-tap window needs more than (11 − 1)·2⁴ pixels per side."""


def psnr(reference: np.ndarray | Tensor, distorted: np.ndarray | Tensor, peak: float = PEAK) -> float:
    """PSNR in dB of two equally shaped arrays; ``inf`` when they are equal."""
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(distorted, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare shapes {a.shape} and {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(peak * peak / mse)


def yuv_psnr(psnr_y: float, psnr_u: float, psnr_v: float) -> float:
    """Compound YUV PSNR (6·Y + U + V)/8 from per-plane PSNRs of one frame."""
    wy, wu, wv = YUV_WEIGHTS
    return (wy * psnr_y + wu * psnr_u + wv * psnr_v) / (wy + wu + wv)


def ms_ssim(reference: Tensor, distorted: Tensor, device: torch.device | str | None = None) -> float | None:
    """MS-SSIM of two RGB frames (3, H, W) in [0, 1] (torchmetrics, 5 scales, data range 1), computed in float32
    on ``device`` (float64 is 20x slower on a CPU for a change in the fifth decimal); None for frames with a side
    under ``MS_SSIM_MIN_SIDE`` pixels, where five scales do not fit."""
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    if min(reference.shape[-2:]) < MS_SSIM_MIN_SIDE:
        return None
    to = {"device": device, "dtype": torch.float32}
    value = multiscale_structural_similarity_index_measure(distorted[None].to(**to), reference[None].to(**to),
                                                           data_range=1.0)
    return float(value)


@dataclass
class FrameQuality:
    """Quality of one decoded frame against its source: PSNRs of the integer output (8-bit RGB, YUV samples at the
    source's depth, what a decoder writes to disk) and of the float output (before rounding, as DCVC measures)."""

    psnr_rgb: float
    psnr_y: float
    psnr_u: float
    psnr_v: float
    ms_ssim: float | None
    psnr_rgb_float: float
    psnr_y_float: float
    psnr_u_float: float
    psnr_v_float: float

    @property
    def psnr_yuv(self) -> float:
        return yuv_psnr(self.psnr_y, self.psnr_u, self.psnr_v)

    @property
    def psnr_yuv_float(self) -> float:
        return yuv_psnr(self.psnr_y_float, self.psnr_u_float, self.psnr_v_float)


@dataclass
class Planes:
    """One frame in both colour spaces, as integer samples (8-bit RGB (3, H, W); YUV 4:2:0 planes at ``depth``
    bits) and as floats in [0, 1] (what a coder outputs before rounding)."""

    rgb: np.ndarray
    yuv: tuple[np.ndarray, np.ndarray, np.ndarray]
    rgb_float: np.ndarray
    yuv_float: tuple[np.ndarray, np.ndarray, np.ndarray]
    depth: int = 8

    @property
    def rgb_tensor(self) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.rgb)).float() / PEAK


def measure(reference: Planes, output: Planes, with_ms_ssim: bool = True,
            device: torch.device | str | None = None) -> FrameQuality:
    """Compare a reconstruction with its source, on the integer and on the float output; MS-SSIM (optional, on
    the 8-bit RGB) runs on ``device``."""
    peak = float(video.max_value(reference.depth))
    score = ms_ssim(reference.rgb_tensor, output.rgb_tensor, device) if with_ms_ssim else None
    y, u, v = (psnr(a, b, peak) for a, b in zip(reference.yuv, output.yuv, strict=True))
    yf, uf, vf = (psnr(a, b, 1.0) for a, b in zip(reference.yuv_float, output.yuv_float, strict=True))
    return FrameQuality(
        psnr_rgb=psnr(reference.rgb, output.rgb), psnr_y=y, psnr_u=u, psnr_v=v, ms_ssim=score,
        psnr_rgb_float=psnr(reference.rgb_float, output.rgb_float, 1.0), psnr_y_float=yf, psnr_u_float=uf,
        psnr_v_float=vf,
    )
