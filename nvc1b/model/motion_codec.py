"""Motion encoder-decoder (paper III-2): structure and detail flows (4 ch) → m_t (C_m, H/16) → two flow heads."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config.model import Interface, MotionCodec as MotionCodecConfig
from .blocks import stack
from .layers import DepthConvBlock, StridedResBlock, UpsampleResBlock, conv3x3, subpel_conv
from .precision import fp32, fp32_region
from .quantization import RateControl


class MotionCodec(nn.Module):
    def __init__(self, cfg: MotionCodecConfig, interface: Interface):
        super().__init__()
        c, c_m = cfg.channels, interface.motion_latent_channels
        slot = lambda i, o: stack(cfg.block_type, i, o, cfg.blocks, DepthConvBlock)  # noqa: E731
        self.enc_in = nn.Sequential(StridedResBlock(4, c), slot(c, c))  # H/2
        self.enc_mid = StridedResBlock(c, c)  # H/4
        self.enc_first = slot(c, c)  # no previous motion feature (first P-frame)
        self.enc_ref = slot(2 * c, c)  # with the previous frame's motion feature
        self.enc_out = nn.Sequential(StridedResBlock(c, c), slot(c, c), conv3x3(c, c_m, stride=2))  # H/16
        self.dec_in = nn.Sequential(  # H/16 → H/4; its output is the motion feature for the next frame
            slot(c_m, c), UpsampleResBlock(c, c), slot(c, c), UpsampleResBlock(c, c), slot(c, c)
        )
        self.dec_mid = UpsampleResBlock(c, c)  # H/2
        self.dec_out = slot(c, c)
        self.structure_head = subpel_conv(c, 2, 2)
        self.detail_head = subpel_conv(c, 2, 2)
        self.rate = RateControl(c, c)

    def encode(self, flow_s: Tensor, flow_d: Tensor, ref_feature: Tensor | None, q_index: Tensor) -> Tensor:
        """m_t (B, C_m, H/16, W/16) from the two flows; ``ref_feature`` is the previous motion feature."""
        x = self.enc_in(torch.cat([flow_s, flow_d], dim=1)) * self.rate.encoder_step(q_index)
        x = self.enc_mid(x)
        x = self.enc_first(x) if ref_feature is None else self.enc_ref(torch.cat([x, ref_feature], dim=1))
        return self.enc_out(x)

    def decode(self, m_hat: Tensor, q_index: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(v̂_s, v̂_d, motion feature at H/4)."""
        feature = self.dec_in(m_hat)
        x = self.dec_out(self.dec_mid(feature) * self.rate.decoder_step(q_index))
        with fp32_region():  # decoded flows are sampling positions: their heads run in fp32
            x = fp32(x)
            return self.structure_head(x), self.detail_head(x), feature
