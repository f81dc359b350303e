"""Probability models of quantised latents: the Laplace conditional for m̂ and ŷ, the Gaussian for the intra
latent (DCVC-DC's), and the factorized (Ballé) prior for the hyper-latents. All give bits per element as DCVC
estimates them, computed in fp32 with autocast off."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .precision import fp32, fp32_region

SCALE_MIN = 1e-5
"""Smallest Laplace scale of the bit estimate (DCVC's clamp); the coder's scale table starts at ``TABLE_SCALE_MIN``."""
LIKELIHOOD_FLOOR = 1e-5
"""Added to every probability before its bits are taken (DCVC's estimate): one symbol costs at most ~16.6 bits."""


def probability_bits(p: Tensor) -> Tensor:
    """−log2(p + 1e-5), at least 0: DCVC's bits of a bin of probability ``p``."""
    return (-torch.log2(p + LIKELIHOOD_FLOOR)).clamp_min(0.0)


def laplace_probability(residual: Tensor, scale: Tensor) -> Tensor:
    """P(bin of width 1 centred on ``residual``) under a zero-mean Laplace of ``scale`` (clamped to SCALE_MIN).

    Closed form of CDF(|v| + ½) − CDF(|v| − ½): the tail as ½·e^{−(|v|−½)/b}·(1 − e^{−1/b}) so that it does
    not cancel, the centre bin as 1 − ½·(e^{(|v|−½)/b} + e^{−(|v|+½)/b}).
    """
    with fp32_region():
        b = fp32(scale).clamp_min(SCALE_MIN)
        a = fp32(residual).abs()
        tail = 0.5 * torch.exp(-(a - 0.5).clamp_min(0.0) / b) * -torch.expm1(-1.0 / b)
        a_in = a.clamp_max(0.5)  # the centre branch is only selected below 0.5; keep its unused values finite
        centre = 1.0 - 0.5 * (torch.exp((a_in - 0.5) / b) + torch.exp(-(a_in + 0.5) / b))
        return torch.where(a >= 0.5, tail, centre)


def laplace_bits(residual: Tensor, scale: Tensor) -> Tensor:
    """Bits of integer-bin ``residual`` (value minus mean) under a zero-mean Laplace of ``scale``, as DCVC
    estimates them: scale clamped to 1e-5, −log2(P + 1e-5), at least 0."""
    with fp32_region():
        return probability_bits(laplace_probability(residual, scale))


def gaussian_probability(residual: Tensor, scale: Tensor) -> Tensor:
    """P(bin of width 1 centred on ``residual``) under a zero-mean Gaussian of std ``scale`` (clamped to
    SCALE_MIN), as ½·(erfc((|v| − ½)/(σ√2)) − erfc((|v| + ½)/(σ√2))), which does not cancel in the tails."""
    with fp32_region():
        s = fp32(scale).clamp_min(SCALE_MIN) * math.sqrt(2.0)
        a = fp32(residual).abs()
        return 0.5 * (torch.erfc((a - 0.5) / s) - torch.erfc((a + 0.5) / s))


def gaussian_bits(residual: Tensor, scale: Tensor) -> Tensor:
    """Bits of integer-bin ``residual`` under a zero-mean Gaussian of std ``scale``, as DCVC-DC estimates the
    intra latent's: std clamped to 1e-5, −log2(P + 1e-5), at least 0."""
    with fp32_region():
        return probability_bits(gaussian_probability(residual, scale))


class FactorizedPrior(nn.Module):
    """Per-channel learned univariate density (Ballé et al. 2018, 'Variational image compression with a
    scale hyperprior', appendix 6.1): a monotone cumulative built from softplus-positive matrices,
    biases and tanh gates. Used for the hyper-latents z_m and z_y. With the default filters (1, 1, 1) it is
    DCVC's 4-layer bit estimator (11 parameters a channel): layer i computes softplus(h_i)·v + b_i, then
    v + tanh(a_i)·tanh(v) except in the last."""

    def __init__(self, channels: int, filters: tuple[int, ...] = (1, 1, 1), init_scale: float = 10.0):
        super().__init__()
        self.channels = channels
        dims = (1, *filters, 1)
        scale = init_scale ** (1.0 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1.0 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))

    def logits_cdf(self, v: Tensor) -> Tensor:
        """Logit of the cumulative at ``v`` of shape (C, 1, N)."""
        for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases)):
            v = torch.matmul(F.softplus(matrix), v) + bias
            if i < len(self.factors):
                v = v + torch.tanh(self.factors[i]) * torch.tanh(v)
        return v

    def forward(self, z: Tensor) -> Tensor:
        """P(bin of width 1 centred on ``z``) for z of shape (B, C, H, W), in fp32: CDF(z + ½) − CDF(z − ½)."""
        b, c, h, w = z.shape
        with fp32_region():  # the matrices' products would otherwise run in bf16
            v = fp32(z).transpose(0, 1).reshape(c, 1, -1)
            p = torch.sigmoid(self.logits_cdf(v + 0.5)) - torch.sigmoid(self.logits_cdf(v - 0.5))
            return p.view(c, b, h, w).transpose(0, 1)

    def likelihood(self, z: Tensor) -> Tensor:
        return self(z)

    def bits(self, z: Tensor) -> Tensor:
        """DCVC's bits per element: −log2(P + 1e-5), at least 0."""
        with fp32_region():
            return probability_bits(self(z))
