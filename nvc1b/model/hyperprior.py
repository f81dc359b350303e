"""Hyperprior (hyper-encoder, factorized ẑ, hyper-decoder) and the prior fusion that merges the hyperprior
with the latent prior (previous frame's latent) and, for ŷ, the temporal prior."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from .blocks import BlockStack, BlockType, make_block
from .layers import DepthConvBlock, conv3x3, pad_bottom_right, subpel_conv
from .likelihood import FactorizedPrior
from .quantization import LatentCoder


def _encoder(style: Literal["deep", "light"], in_ch: int, z_ch: int) -> nn.Sequential:
    act = lambda: nn.LeakyReLU(0.01)  # noqa: E731
    if style == "deep":  # five 3×3 convs, two of them strided (motion hyperprior)
        return nn.Sequential(
            conv3x3(in_ch, z_ch), act(), conv3x3(z_ch, z_ch), act(), conv3x3(z_ch, z_ch, 2), act(),
            conv3x3(z_ch, z_ch), act(), conv3x3(z_ch, z_ch, 2),
        )
    return nn.Sequential(conv3x3(in_ch, z_ch), act(), conv3x3(z_ch, z_ch, 2), act(), conv3x3(z_ch, z_ch, 2))


def _decoder(z_ch: int, out_ch: int) -> nn.Sequential:
    """ẑ → hyper parameters; every inner layer has the latent's width ``out_ch`` (as DCVC's)."""
    act = lambda: nn.LeakyReLU(0.01)  # noqa: E731
    return nn.Sequential(
        conv3x3(z_ch, out_ch), act(), subpel_conv(out_ch, out_ch, 2), act(), conv3x3(out_ch, out_ch), act(),
        subpel_conv(out_ch, out_ch, 2), act(), conv3x3(out_ch, out_ch),
    )


def hyper_latent_size(height: int, width: int) -> tuple[int, int]:
    """Spatial size of ẑ for a latent of ``height``×``width`` (the latent is padded to a multiple of 4)."""
    return -(-height // 4), -(-width // 4)


class Hyperprior(nn.Module):
    """Latent (C ch) → ẑ (N ch, 1/4 size, factorized prior) → hyper parameters (C ch, latent size)."""

    def __init__(self, latent_ch: int, z_ch: int, style: Literal["deep", "light"]):
        super().__init__()
        self.z_channels = z_ch
        self.encoder = _encoder(style, latent_ch, z_ch)
        self.decoder = _decoder(z_ch, latent_ch)
        self.z_prior = FactorizedPrior(z_ch)

    def forward(
        self, y: Tensor | None, latent_hw: tuple[int, int], batch: int, coder: LatentCoder, key: str
    ) -> tuple[Tensor, Tensor]:
        h, w = latent_hw
        zh, zw = hyper_latent_size(h, w)
        z = None
        if y is not None:
            z = self.encoder(pad_bottom_right(y, 4 * zh - h, 4 * zw - w))
        z_hat, bits = coder.factorized(key, z, self.z_prior, (batch, self.z_channels, zh, zw))
        return self.decoder(z_hat)[..., :h, :w], bits


class PriorFusion(nn.Module):
    """Fuses prior tensors into the common parameters (quant step, scales, means; 3C channels).

    With ``latent_prior``, two adaptors choose the input: one without the previous latent (first P-frame
    after an I-frame) and one with it; both map to the width of the second. ``depth`` blocks follow:
    input → ``width`` → … → 3C.
    """

    def __init__(
        self, latent_ch: int, n_priors: int, width: int, depth: int, latent_prior: bool,
        block_type: BlockType = "conv", gated: bool = False,
    ):
        super().__init__()
        block = lambda i, o: DepthConvBlock(i, o, gated=gated)  # noqa: E731
        in_ch = n_priors * latent_ch
        self.adaptor_first = self.adaptor_ref = None
        if latent_prior:
            ref_ch = in_ch + latent_ch
            self.adaptor_first = make_block(block_type, in_ch, ref_ch, block)
            self.adaptor_ref = make_block(block_type, ref_ch, ref_ch, block)
            in_ch = ref_ch
        if depth == 1:
            blocks = [make_block(block_type, in_ch, 3 * latent_ch, block)]
        else:
            blocks = [make_block(block_type, in_ch, width, block)]
            blocks += [make_block(block_type, width, width, block) for _ in range(depth - 2)]
            blocks.append(make_block(block_type, width, 3 * latent_ch, block))
        self.net = BlockStack(blocks)

    def forward(self, priors: list[Tensor], ref_latent: Tensor | None = None) -> Tensor:
        x = torch.cat(priors, dim=1)
        if self.adaptor_first is not None:
            if ref_latent is None:
                x = self.adaptor_first(x)
            else:
                x = self.adaptor_ref(torch.cat([x, ref_latent], dim=1))
        return self.net(x)
