"""Quality metrics of the test protocol: PSNR of 8-bit RGB, per-plane PSNR of 8-bit YUV 4:2:0 and the compound
YUV PSNR (6·Y + U + V)/8 of DCVC and the paper, and MS-SSIM (torchmetrics) on RGB.

Every metric compares 8-bit pictures (what a decoder writes to disk), given as uint8 arrays or tensors.
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


def rgb_to_yuv420_u8(rgb: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One RGB frame (3, H, W) in [0, 1] → uint8 planes Y (H, W), U and V (H/2, W/2) by the project's BT.709."""
    y, u, v = video.rgb_to_yuv420(rgb[None])
    return video.to_uint8(y[0]), video.to_uint8(u[0]), video.to_uint8(v[0])


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
    """Quality of one decoded frame against its source."""

    psnr_rgb: float
    psnr_y: float
    psnr_u: float
    psnr_v: float
    ms_ssim: float | None

    @property
    def psnr_yuv(self) -> float:
        return yuv_psnr(self.psnr_y, self.psnr_u, self.psnr_v)


@dataclass
class Reference:
    """The source of one frame in both colour spaces: 8-bit RGB (3, H, W) and 8-bit YUV 4:2:0 planes."""

    rgb: np.ndarray
    y: np.ndarray
    u: np.ndarray
    v: np.ndarray

    @property
    def rgb_float(self) -> Tensor:
        return torch.from_numpy(self.rgb).float() / PEAK


def measure(reference: Reference, rgb_hat: np.ndarray, yuv_hat: tuple[np.ndarray, np.ndarray, np.ndarray],
            with_ms_ssim: bool = True, device: torch.device | str | None = None) -> FrameQuality:
    """Compare a reconstruction, given as 8-bit RGB (3, H, W) and 8-bit YUV 4:2:0 planes, with its source;
    MS-SSIM (optional) runs on ``device``."""
    y_hat, u_hat, v_hat = yuv_hat
    score = None
    if with_ms_ssim:
        score = ms_ssim(reference.rgb_float, torch.from_numpy(np.ascontiguousarray(rgb_hat)).float() / PEAK, device)
    return FrameQuality(
        psnr_rgb=psnr(reference.rgb, rgb_hat), psnr_y=psnr(reference.y, y_hat), psnr_u=psnr(reference.u, u_hat),
        psnr_v=psnr(reference.v, v_hat), ms_ssim=score,
    )
