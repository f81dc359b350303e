"""Backward warping by an optical flow in pixels (bilinear, border padding)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .layers import structure_detail


def flow_warp(x: Tensor, flow: Tensor) -> Tensor:
    """Sample ``x`` (B, C, H, W) at ``p + flow(p)``; ``flow`` is (B, 2, H, W) in pixels, (dx, dy)."""
    b, _, h, w = x.shape
    ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=flow.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=flow.dtype)
    base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (H, W, 2) as (x, y)
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=x.device, dtype=flow.dtype)
    grid = base[None] + flow.permute(0, 2, 3, 1) * scale
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border", align_corners=True)


def warp_components(frame: Tensor, flow_s: Tensor, flow_d: Tensor) -> tuple[Tensor, Tensor]:
    """Warp the structure component of ``frame`` by ``flow_s`` and its detail component by ``flow_d``."""
    frame_s, frame_d = structure_detail(frame)
    return flow_warp(frame_s, flow_s), flow_warp(frame_d, flow_d)
