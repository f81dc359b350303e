"""Quadtree-partition spatial prior (DCVC-DC): the latent is split into 4 channel groups and 4 interleaved
positions of each 2×2 cell, and coded in 4 steps; step k codes one position per group, and steps 2–4 take
their Laplace parameters from everything decoded so far (3 step adaptors feeding one shared prior net)."""

from __future__ import annotations

import itertools
from typing import Literal

import torch
from torch import Tensor, nn

from .blocks import BlockStack, BlockType, make_block
from .layers import DepthConvBlock, conv1x1
from .precision import fp32
from .quantization import LatentCoder

STEP_POSITIONS = ((0, 1, 2, 3), (3, 2, 1, 0), (2, 3, 0, 1), (1, 0, 3, 2))
"""STEP_POSITIONS[step][group]: which 2×2 position (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right)
channel group ``group`` codes at ``step``. Over the 4 steps every group codes every position once."""

QUANT_STEP_MIN = 0.5


def quadtree_masks(channels: int, height: int, width: int, device=None, dtype=torch.float32) -> Tensor:
    """Binary masks of shape (4, 1, channels, height, width), one per coding step; they partition the latent."""
    rows = torch.arange(height, device=device)[:, None] % 2
    cols = torch.arange(width, device=device)[None, :] % 2
    position = rows * 2 + cols  # (h, w) in 0..3
    group = torch.arange(channels, device=device) // (channels // 4)  # (C,)
    table = torch.tensor(STEP_POSITIONS, device=device)  # (4 steps, 4 groups)
    wanted = table[:, group]  # (4, C)
    masks = wanted[:, :, None, None] == position[None, None]
    return masks.to(dtype)[:, None]


class QuadtreeSpatialPrior(nn.Module):
    """Codes a latent of ``channels`` channels given common parameters (quant step, scales, means; 3C channels)."""

    def __init__(
        self, channels: int, width: int, depth: int, block_type: BlockType = "conv", gated: bool = False,
        distribution: Literal["laplace", "gaussian"] = "laplace", output_block: bool = False,
    ):
        super().__init__()
        if channels % 4:
            raise ValueError(f"quadtree prior needs a channel count divisible by 4, got {channels}")
        self.channels = channels
        self.distribution = distribution
        block = lambda i, o: DepthConvBlock(i, o, gated=gated)  # noqa: E731
        self.step_adaptors = nn.ModuleList([conv1x1(4 * channels, width) for _ in range(3)])
        # output_block (DCVC-DC's intra): the last of ``depth`` blocks runs at the output width 2C
        widths = [width] * (depth - int(output_block)) + [2 * channels] * (1 + int(output_block))
        self.net = BlockStack([make_block(block_type, i, o, block) for i, o in itertools.pairwise(widths)])

    def forward(self, y: Tensor | None, common: Tensor, coder: LatentCoder, key: str) -> tuple[Tensor, Tensor]:
        """Return ŷ (B, C, h, w) and its bits (B,). ``y`` is None when decoding."""
        # the rate path (scaling, masks, ŷ and its gathers) is fp32; only the prior nets' convolutions run in bf16
        quant_step, scales, means = fp32(common).chunk(3, dim=1)
        quant_step = quant_step.clamp_min(QUANT_STEP_MIN)
        y_scaled = None if y is None else fp32(y) / quant_step
        b, c, h, w = means.shape
        masks = quadtree_masks(c, h, w, device=means.device, dtype=means.dtype)
        y_hat = torch.zeros_like(means)
        bits = means.new_zeros(b)
        for step in range(4):
            if step:
                params = self.net(self.step_adaptors[step - 1](torch.cat([y_hat, common], dim=1)))
                scales, means = fp32(params).chunk(2, 1)
            code = coder.gaussian if self.distribution == "gaussian" else coder.laplace
            part, part_bits = code(key, y_scaled, means, scales, masks[step])
            y_hat = y_hat + part
            bits = bits + part_bits
        return y_hat * quant_step, bits
