"""Intra (I-frame) codec: DCVC-DC's IntraNoAR. A hyperprior image codec (ẑ by a factorized prior, a residual
hyper-decoder, a prior-fusion net whose output is cropped to the latent after it), the quadtree spatial prior with a
Gaussian latent, and the same variable-rate scheme as the P-frame coder."""

from __future__ import annotations

from torch import Tensor, nn

from ..config.model import Intra as IntraConfig
from .blocks import stack
from .hyperprior import PriorFusion, hyper_latent_size
from .layers import DepthConvBlock, StridedResBlock, UpsampleResBlock, conv3x3, pad_bottom_right
from .likelihood import FactorizedPrior
from .quadtree import QuadtreeSpatialPrior
from .quantization import LatentCoder, RateControl, clamp_pixels
from .unet import UNet


class IntraHyperprior(nn.Module):
    """y (N ch) → ẑ (Z ch, 1/4 size, factorized prior) → hyper features (N ch, padded latent size)."""

    def __init__(self, latent_ch: int, z_ch: int):
        super().__init__()
        self.z_channels = z_ch
        self.encoder = nn.Sequential(
            DepthConvBlock(latent_ch, latent_ch, gated=True), conv3x3(latent_ch, z_ch, 2), nn.LeakyReLU(0.01),
            conv3x3(z_ch, z_ch, 2),
        )
        self.decoder = nn.Sequential(
            UpsampleResBlock(z_ch, latent_ch), UpsampleResBlock(latent_ch, latent_ch),
            DepthConvBlock(latent_ch, latent_ch, gated=True),
        )
        self.z_prior = FactorizedPrior(z_ch)

    def forward(
        self, y: Tensor | None, latent_hw: tuple[int, int], batch: int, coder: LatentCoder, key: str
    ) -> tuple[Tensor, Tensor]:
        h, w = latent_hw
        zh, zw = hyper_latent_size(h, w)
        z = None if y is None else self.encoder(pad_bottom_right(y, 4 * zh - h, 4 * zw - w))
        z_hat, bits = coder.factorized(key, z, self.z_prior, (batch, self.z_channels, zh, zw))
        return self.decoder(z_hat), bits


class IntraCodec(nn.Module):
    def __init__(self, cfg: IntraConfig):
        super().__init__()
        (e1, e2), n, r, bt = cfg.channels, cfg.latent_channels, cfg.refine_channels, cfg.block_type
        block = lambda i, o: DepthConvBlock(i, o, gated=True)  # noqa: E731
        slot = lambda i, o: stack(bt, i, o, cfg.blocks, block)  # noqa: E731
        self.latent_channels = n
        self.enc_in = nn.Sequential(StridedResBlock(3, e1), slot(e1, e1))  # H/2
        self.enc_out = nn.Sequential(
            StridedResBlock(e1, e2), slot(e2, e2), StridedResBlock(e2, n), slot(n, n), conv3x3(n, n, 2)
        )  # H/16
        self.dec_in = nn.Sequential(
            slot(n, n), UpsampleResBlock(n, n), slot(n, n), UpsampleResBlock(n, e2), slot(e2, e2),
            UpsampleResBlock(e2, e1),
        )  # H/2
        self.dec_out = nn.Sequential(slot(e1, e1), UpsampleResBlock(e1, r))
        self.refine = nn.Sequential(UNet(r, r, cfg.unet_channels, cfg.unet_blocks, bt, gated=True), conv3x3(r, 3))
        self.rate = RateControl(e1, e1)
        self.hyperprior = IntraHyperprior(n, cfg.hyper_channels)
        self.fusion = PriorFusion(
            n, n_priors=1, width=cfg.fusion_channels, depth=cfg.fusion_blocks, latent_prior=False,
            block_type=bt, gated=True,
        )
        self.spatial_prior = QuadtreeSpatialPrior(
            n, cfg.prior_channels, cfg.spatial_blocks, bt, gated=True, distribution="gaussian", output_block=True,
        )

    def forward(
        self, x: Tensor | None, q_index: Tensor, latent_hw: tuple[int, int], batch: int, coder: LatentCoder
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Code frame ``x`` (B, 3, H, W), H and W multiples of 16 (None when decoding); return x̂ and bits."""
        y = None
        if x is not None:
            y = self.enc_out(self.enc_in(x) * self.rate.encoder_step(q_index))
        hyper, z_bits = self.hyperprior(y, latent_hw, batch, coder, "z_y")
        common = self.fusion([hyper])[..., : latent_hw[0], : latent_hw[1]]  # cropped after fusion, as DCVC-DC
        y_hat, y_bits = self.spatial_prior(y, common, coder, "y")
        x_hat = self.refine(self.dec_out(self.dec_in(y_hat) * self.rate.decoder_step(q_index)))
        return clamp_pixels(x_hat), {"y": y_bits, "z_y": z_bits}
