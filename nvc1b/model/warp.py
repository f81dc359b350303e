"""Backward warping by an optical flow in pixels (bilinear, border padding).

Warping is always computed in fp32 with autocast off (see ``precision``): the grid, the sampling and its result.
The caller's convolutions cast the fp32 result back down under autocast."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .layers import structure_detail
from .precision import fp32_region


def _dtype(x: Tensor, flow: Tensor) -> torch.dtype:
    """fp32, or fp64 when either input is fp64: never a half-precision type."""
    return torch.float64 if torch.float64 in (x.dtype, flow.dtype) else torch.float32


def _grid(flow: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """Sampling positions ``p + flow(p)`` in grid_sample's [-1, 1] coordinates: flow (..., 2, H, W) → (..., H, W, 2),
    built in ``dtype``; call inside an fp32 region."""
    h, w = flow.shape[-2:]
    ys = torch.linspace(-1.0, 1.0, h, device=flow.device, dtype=dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=flow.device, dtype=dtype)
    base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (H, W, 2) as (x, y)
    half = torch.tensor([max(w - 1, 1) / 2.0, max(h - 1, 1) / 2.0], device=flow.device, dtype=dtype)
    return base + flow.to(dtype).movedim(-3, -1) / half  # divided, as DCVC's warp: the same float grid


def _sample(x: Tensor, grid: Tensor) -> Tensor:
    return F.grid_sample(x.to(grid.dtype), grid, mode="bilinear", padding_mode="border", align_corners=True)


def flow_warp(x: Tensor, flow: Tensor) -> Tensor:
    """Sample ``x`` (B, C, H, W) at ``p + flow(p)``; ``flow`` is (B, 2, H, W) in pixels, (dx, dy)."""
    with fp32_region():
        return _sample(x, _grid(flow, _dtype(x, flow)))


def flow_warp_many(x: Tensor, flows: Tensor) -> Tensor:
    """Sample ``x`` (B, C, H, W) once per flow of ``flows`` (B, K, 2, H, W) → (B, C, K, H, W).

    One grid_sample over a K·H-high grid: ``x`` is read in place instead of being copied K times, and backward
    keeps one ``x`` rather than K copies (offset-diversity alignment warps every feature group K times)."""
    b, k, _, h, w = flows.shape
    with fp32_region():
        out = _sample(x, _grid(flows, _dtype(x, flows)).reshape(b, k * h, w, 2))
    return out.view(b, x.shape[1], k, h, w)


def warp_components(frame: Tensor, flow_s: Tensor, flow_d: Tensor) -> tuple[Tensor, Tensor]:
    """Warp the structure component of ``frame`` by ``flow_s`` and its detail component by ``flow_d``."""
    frame_s, frame_d = structure_detail(frame)
    return flow_warp(frame_s, flow_s), flow_warp(frame_d, flow_d)
