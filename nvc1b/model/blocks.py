"""Block types of the scaling study (conv, conv+Swin, Swin) and stacks that can checkpoint activations."""

from __future__ import annotations

from typing import Callable, Literal

import torch.utils.checkpoint
from torch import Tensor, nn

from .layers import conv1x1
from .swin import SwinPair

BlockType = Literal["conv", "mixed", "swin"]
ConvFactory = Callable[[int, int], nn.Module]


def make_block(block_type: BlockType, in_ch: int, out_ch: int, conv: ConvFactory) -> nn.Module:
    """One block of a part: the part's own conv block, that block followed by a Swin pair ('mixed'),
    or a Swin pair alone ('swin', with a 1×1 projection when the width changes)."""
    if block_type == "conv":
        return conv(in_ch, out_ch)
    if block_type == "mixed":
        return nn.Sequential(conv(in_ch, out_ch), SwinPair(out_ch))
    if block_type == "swin":
        if in_ch == out_ch:
            return SwinPair(out_ch)
        return nn.Sequential(conv1x1(in_ch, out_ch), SwinPair(out_ch))
    raise ValueError(f"unknown block type {block_type!r}")


class BlockStack(nn.Module):
    """A sequence of blocks; with ``checkpoint`` set, each block's activations are recomputed in backward."""

    def __init__(self, blocks: list[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.checkpoint = False

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            if self.checkpoint and x.requires_grad:
                x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x


def stack(block_type: BlockType, in_ch: int, out_ch: int, depth: int, conv: ConvFactory) -> nn.Module:
    """``depth`` blocks from ``in_ch`` to ``out_ch`` (the first block changes the width); depth 0 is identity."""
    if depth == 0:
        if in_ch != out_ch:
            raise ValueError(f"an empty stack cannot map {in_ch} to {out_ch} channels")
        return nn.Identity()
    blocks = [make_block(block_type, in_ch, out_ch, conv)]
    blocks += [make_block(block_type, out_ch, out_ch, conv) for _ in range(depth - 1)]
    return BlockStack(blocks)


def set_block_checkpointing(model: nn.Module, enabled: bool) -> int:
    """Switch per-block activation checkpointing on every stack in ``model``; returns how many stacks."""
    count = 0
    for module in model.modules():
        if isinstance(module, BlockStack):
            module.checkpoint = enabled
            count += 1
    return count
