"""Contextual encoder-decoder (paper III-4): x_t with the contexts C⁰, C¹, C² concatenated at matching scales
→ y_t (C_y, H/16); ŷ_t with C¹, C² → decoder feature; the reconstruction net (two U-Nets) with C⁰ → the
reference feature F̂_t and the frame x̂_t."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config.model import ContextualCodec as ContextualCodecConfig, Interface
from .blocks import BlockType, stack
from .layers import ResBlock, conv3x3, subpel_conv
from .quantization import RateControl, clamp_pixels
from .unet import UNet

Contexts = tuple[Tensor, Tensor, Tensor]


def _res(block_type: BlockType, ch: int, depth: int) -> nn.Module:
    block = lambda i, o: ResBlock(o, slope=0.1, bottleneck=True, end_with_relu=True)  # noqa: E731
    return stack(block_type, ch, ch, depth, block)


class ContextualCodec(nn.Module):
    def __init__(self, cfg: ContextualCodecConfig, interface: Interface):
        super().__init__()
        (e1, e2, e3, e4), (b1, b2, b3, b4), bt = cfg.channels, cfg.blocks, cfg.block_type
        k0, k1, k2 = interface.context_channels
        c_y, c_f = interface.latent_channels, interface.feature_channels

        self.enc1 = conv3x3(3 + k0, e1, 2)  # H/2
        self.enc1_res = _res(bt, e1 + k1, b1)
        self.enc2 = conv3x3(e1 + k1, e2, 2)  # H/4
        self.enc2_res = _res(bt, e2 + k2, b2)
        self.enc3 = nn.Sequential(conv3x3(e2 + k2, e3, 2), _res(bt, e3, b3))  # H/8
        if b4:
            self.enc4 = nn.Sequential(conv3x3(e3, e4, 2), _res(bt, e4, b4), conv3x3(e4, c_y))  # H/16
            self.dec4 = nn.Sequential(conv3x3(c_y, e4), _res(bt, e4, b4), subpel_conv(e4, e3, 2, kernel=3))
        else:
            self.enc4 = conv3x3(e3, c_y, 2)
            self.dec4 = subpel_conv(c_y, e3, 2, kernel=3)  # H/8
        self.dec3 = nn.Sequential(_res(bt, e3, b3), subpel_conv(e3, e2, 2, kernel=3))  # H/4
        self.dec2_res = _res(bt, e2 + k2, b2)
        self.dec2 = subpel_conv(e2 + k2, e1, 2, kernel=3)  # H/2
        self.dec1_res = _res(bt, e1 + k1, b1)
        self.dec1 = subpel_conv(e1 + k1, cfg.recon_channels, 2, kernel=3)  # H
        self.rate = RateControl(e1 + k1, e1)

        self.recon_in = conv3x3(cfg.recon_channels + k0, c_f)  # decoder output, then C⁰ (DCVC-SDD's order)
        self.recon_unets = nn.Sequential(
            UNet(c_f, c_f, cfg.unet_channels, cfg.unet_blocks, bt), UNet(c_f, c_f, cfg.unet_channels, cfg.unet_blocks, bt)
        )
        self.recon_out = conv3x3(c_f, 3)

    def encode(self, x: Tensor, contexts: Contexts, q_index: Tensor) -> Tensor:
        """y_t (B, C_y, H/16, W/16)."""
        c0, c1, c2 = contexts
        f = self.enc1_res(torch.cat([self.enc1(torch.cat([x, c0], dim=1)), c1], dim=1))
        f = self.enc2(f * self.rate.encoder_step(q_index))
        f = self.enc2_res(torch.cat([f, c2], dim=1))
        return self.enc4(self.enc3(f))

    def decode(self, y_hat: Tensor, contexts: Contexts, q_index: Tensor) -> tuple[Tensor, Tensor]:
        """(x̂_t clamped to [0, 1], reference feature F̂_t)."""
        c0, c1, c2 = contexts
        f = self.dec3(self.dec4(y_hat))
        f = self.dec2(self.dec2_res(torch.cat([f, c2], dim=1)))
        f = self.dec1_res(torch.cat([f * self.rate.decoder_step(q_index), c1], dim=1))
        f = self.dec1(f)
        feature = self.recon_unets(self.recon_in(torch.cat([f, c0], dim=1)))
        return clamp_pixels(self.recon_out(feature)), feature
