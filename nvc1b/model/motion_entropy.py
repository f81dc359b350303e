"""Motion entropy model (paper III-5): factorized ẑ_m, and a Laplace for m̂_t whose parameters fuse the
hyperprior, the latent prior (previous frame's m̂) and the quadtree spatial prior."""

from __future__ import annotations

from torch import Tensor, nn

from ..config.model import Interface, MotionEntropy as MotionEntropyConfig
from .hyperprior import Hyperprior, PriorFusion
from .quadtree import QuadtreeSpatialPrior
from .quantization import LatentCoder


class MotionEntropyModel(nn.Module):
    def __init__(self, cfg: MotionEntropyConfig, interface: Interface):
        super().__init__()
        c_m = interface.motion_latent_channels
        self.hyperprior = Hyperprior(c_m, cfg.hyper_channels, style="deep")
        self.fusion = PriorFusion(
            c_m, n_priors=1, width=cfg.prior_channels, depth=cfg.fusion_blocks, latent_prior=True,
            block_type=cfg.block_type,
        )
        self.spatial_prior = QuadtreeSpatialPrior(c_m, cfg.prior_channels, cfg.spatial_blocks, cfg.block_type)

    def forward(
        self, m: Tensor | None, ref_m_hat: Tensor | None, latent_hw: tuple[int, int], batch: int, coder: LatentCoder
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Code m_t (None when decoding); return m̂_t and bits per sample for 'm' and 'z_m'."""
        hyper, z_bits = self.hyperprior(m, latent_hw, batch, coder, "z_m")
        common = self.fusion([hyper], ref_m_hat)
        m_hat, m_bits = self.spatial_prior(m, common, coder, "m")
        return m_hat, {"m": m_bits, "z_m": z_bits}
