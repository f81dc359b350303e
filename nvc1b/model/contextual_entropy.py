"""Contextual entropy model (paper III-5): factorized ẑ_y, and a Laplace for ŷ_t whose parameters fuse the
hyperprior, the temporal prior (from C² by two stride-2 convs), the latent prior (previous ŷ) and the quadtree
spatial prior."""

from __future__ import annotations

from torch import Tensor, nn

from ..config.model import ContextualEntropy as ContextualEntropyConfig, Interface
from .hyperprior import Hyperprior, PriorFusion
from .layers import conv3x3
from .quadtree import QuadtreeSpatialPrior
from .quantization import LatentCoder


class ContextualEntropyModel(nn.Module):
    def __init__(self, cfg: ContextualEntropyConfig, interface: Interface):
        super().__init__()
        c_y, k2 = interface.latent_channels, interface.context_channels[2]
        self.hyperprior = Hyperprior(c_y, cfg.hyper_channels, style="light")
        self.temporal_prior = nn.Sequential(
            conv3x3(k2, cfg.temporal_channels, 2), nn.LeakyReLU(0.1), conv3x3(cfg.temporal_channels, c_y, 2)
        )
        self.fusion = PriorFusion(
            c_y, n_priors=2, width=cfg.prior_channels, depth=cfg.fusion_blocks, latent_prior=True,
            block_type=cfg.block_type,
        )
        self.spatial_prior = QuadtreeSpatialPrior(c_y, cfg.prior_channels, cfg.spatial_blocks, cfg.block_type)

    def forward(
        self, y: Tensor | None, context2: Tensor, ref_y_hat: Tensor | None, latent_hw: tuple[int, int],
        batch: int, coder: LatentCoder,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Code y_t (None when decoding); return ŷ_t and bits per sample for 'y' and 'z_y'."""
        hyper, z_bits = self.hyperprior(y, latent_hw, batch, coder, "z_y")
        common = self.fusion([self.temporal_prior(context2), hyper], ref_y_hat)
        y_hat, y_bits = self.spatial_prior(y, common, coder, "y")
        return y_hat, {"y": y_bits, "z_y": z_bits}
