"""Three-scale U-Net of depthwise-conv blocks (reconstruction nets of the P-frame and intra coders)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import BlockType, make_block, stack
from .layers import DepthConvBlock, subpel_conv


class UNet(nn.Module):
    def __init__(
        self, in_ch: int, out_ch: int, widths: tuple[int, int, int], depth: int,
        block_type: BlockType = "conv", gated: bool = False,
    ):
        super().__init__()
        w0, w1, w2 = widths
        block = lambda i, o: DepthConvBlock(i, o, gated=gated)  # noqa: E731
        self.down0 = make_block(block_type, in_ch, w0, block)
        self.down1 = make_block(block_type, w0, w1, block)
        self.down2 = make_block(block_type, w1, w2, block)
        self.bottom = stack(block_type, w2, w2, depth, block)
        self.up2 = subpel_conv(w2, w1, 2)
        self.merge1 = make_block(block_type, 2 * w1, w1, block)
        self.up1 = subpel_conv(w1, w0, 2)
        self.merge0 = make_block(block_type, 2 * w0, out_ch, block)

    def forward(self, x: Tensor) -> Tensor:
        x0 = self.down0(x)
        x1 = self.down1(F.max_pool2d(x0, 2))
        x2 = self.bottom(self.down2(F.max_pool2d(x1, 2)))
        d1 = self.merge1(torch.cat([x1, self.up2(x2)], dim=1))
        return self.merge0(torch.cat([x0, self.up1(d1)], dim=1))
