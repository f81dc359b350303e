"""Motion estimation (paper III-1): structure/detail decomposition, then a SpyNet flow on each component."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config.model import MotionEstimation as MotionEstimationConfig
from .layers import structure_detail, up2
from .warp import flow_warp

SPYNET_WIDTHS = (32, 64, 32, 16)


class SpyNetLevel(nn.Module):
    """Five 7×7 convs: [frame, warped reference, upsampled flow] (8 ch) → flow residual (2 ch)."""

    def __init__(self, widths: tuple[int, ...]):
        super().__init__()
        dims = (8, *widths, 2)
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 7, padding=3) for i, o in zip(dims[:-1], dims[1:]))

    def forward(self, x: Tensor) -> Tensor:
        for conv in self.convs[:-1]:
            x = F.relu(conv(x))
        return self.convs[-1](x)


class SpyNet(nn.Module):
    """Coarse-to-fine flow over an average-pool pyramid of ``levels`` levels."""

    def __init__(self, levels: int = 4, width: float = 1.0):
        super().__init__()
        widths = tuple(max(2, round(w * width)) for w in SPYNET_WIDTHS)
        self.levels = nn.ModuleList(SpyNetLevel(widths) for _ in range(levels))

    def forward(self, current: Tensor, reference: Tensor) -> Tensor:
        """Flow (B, 2, H, W) in pixels such that warping ``reference`` by it approximates ``current``."""
        cur, ref = [current], [reference]
        for _ in range(len(self.levels) - 1):
            cur.append(F.avg_pool2d(cur[-1], 2))
            ref.append(F.avg_pool2d(ref[-1], 2))
        b, _, h, w = cur[-1].shape
        flow = current.new_zeros(b, 2, h // 2, w // 2)
        for level, net in enumerate(self.levels):
            i = len(self.levels) - 1 - level
            flow = up2(flow) * 2.0
            flow = flow + net(torch.cat([cur[i], flow_warp(ref[i], flow), flow], dim=1))
        return flow


class MotionEstimation(nn.Module):
    """Flows on the structure and on the detail components of the current and reference frames."""

    def __init__(self, cfg: MotionEstimationConfig):
        super().__init__()
        self.spynet = SpyNet(cfg.levels, cfg.width)

    def forward(self, x: Tensor, ref: Tensor) -> tuple[Tensor, Tensor]:
        """(v_s, v_d), each (B, 2, H, W)."""
        # both components go through the one SpyNet as a single batch
        flows = self.spynet(torch.cat(structure_detail(x)), torch.cat(structure_detail(ref)))
        return flows.chunk(2, dim=0)
