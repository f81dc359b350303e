"""VCT's per-frame transforms (paper Section 3.3): the image encoder E, the decoder D, the latent residual
predictor f_LRP and the stage-I mean-scale hyperprior. Frames are coded independently: y_i = round(E(x_i))."""

from __future__ import annotations

from torch import Tensor, nn

from ...model.likelihood import FactorizedPrior
from .config import Hyperprior as HyperpriorConfig
from .config import Transforms as TransformsConfig


class ResidualBlock(nn.Module):
    """Two 3×3 convolutions with a LeakyReLU between them, added to the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def _down(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 5, stride=2, padding=2)


def _up(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 5, stride=2, padding=2, output_padding=1)


class ImageEncoder(nn.Module):
    """E: four stride-2 5×5 convolutions, 16× down, d_ED filters, d_C output channels."""

    def __init__(self, cfg: TransformsConfig):
        super().__init__()
        c = cfg.channels
        self.layers = nn.Sequential(
            _down(3, c), nn.GELU(), _down(c, c), nn.GELU(), _down(c, c), nn.GELU(), _down(c, cfg.latent_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] → ỹ (B, d_C, H/16, W/16)."""
        return self.layers(x)


class ImageDecoder(nn.Module):
    """D: residual blocks at H/16 and H/8 around four stride-2 transposed convolutions."""

    def __init__(self, cfg: TransformsConfig):
        super().__init__()
        c = cfg.channels
        low, mid = cfg.decoder_blocks
        self.layers = nn.Sequential(
            nn.Conv2d(cfg.latent_channels, c, 3, padding=1), *[ResidualBlock(c) for _ in range(low)],
            _up(c, c), *[ResidualBlock(c) for _ in range(mid)],
            _up(c, c), nn.GELU(), _up(c, c), nn.GELU(), _up(c, 3),
        )

    def forward(self, y: Tensor) -> Tensor:
        """y′ (B, d_C, h, w) → x̂ (B, 3, 16h, 16w), not yet clamped."""
        return self.layers(y)


class LatentResidualPredictor(nn.Module):
    """f_LRP: a 1×1 convolution d_T → d_C and a residual block; y′ = ŷ + f_LRP(z_cur) (Section 3.5)."""

    def __init__(self, d_model: int, latent_channels: int):
        super().__init__()
        self.project = nn.Conv2d(d_model, latent_channels, 1)
        self.block = ResidualBlock(latent_channels)

    def forward(self, z_cur: Tensor) -> Tensor:
        """z_cur (B, d_T, h, w) → residual (B, d_C, h, w)."""
        return self.block(self.project(z_cur))


class MeanScaleHyperprior(nn.Module):
    """Ballé/Minnen mean-scale hyperprior over ỹ, used for the rate of stage I only."""

    def __init__(self, cfg: HyperpriorConfig, latent_channels: int):
        super().__init__()
        c, z = cfg.channels, cfg.hyper_channels
        self.analysis = nn.Sequential(
            nn.Conv2d(latent_channels, c, 3, padding=1), nn.GELU(), _down(c, c), nn.GELU(), _down(c, z),
        )
        self.synthesis = nn.Sequential(
            _up(z, c), nn.GELU(), _up(c, c), nn.GELU(), nn.Conv2d(c, 2 * latent_channels, 3, padding=1),
        )
        self.prior = FactorizedPrior(z)

    def forward(self, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """ỹ (B, C, h, w) with h, w multiples of 4 → (z̃, means, raw scales) of ỹ given the rounded z."""
        z = self.analysis(y)
        return z, *self.synthesis(z + (z.round() - z).detach()).chunk(2, dim=1)
