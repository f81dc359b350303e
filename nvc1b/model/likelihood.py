"""Probability models of quantised latents: the Laplace conditional for m̂ and ŷ, and the factorized (Ballé)
prior for the hyper-latents ẑ_m and ẑ_y. Both give bits per element, computed in fp32 with autocast off."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .precision import fp32, fp32_region

SCALE_MIN = 0.11
"""Smallest Laplace scale the model may predict; the entropy coder's scale table starts here too."""
LIKELIHOOD_MIN = 1e-9
"""Probability floor, so one unlikely symbol costs at most ~30 bits in the estimate."""

_LOG_P_MIN = math.log(LIKELIHOOD_MIN)


def laplace_bits(residual: Tensor, scale: Tensor) -> Tensor:
    """Bits of integer-bin ``residual`` (value minus mean) under a zero-mean Laplace of ``scale``.

    Uses the closed form of P(|v| ± 0.5) with the tail written in log space, so large residuals and small
    scales stay finite in both directions.
    """
    with fp32_region():
        b = fp32(scale).clamp_min(SCALE_MIN)
        a = fp32(residual).abs()
        log_tail = math.log(0.5) - (a - 0.5) / b + torch.log(-torch.expm1(-1.0 / b))
        a_in = a.clamp_max(0.5)  # the centre branch is only selected below 0.5; keep its unused values finite
        centre = 1.0 - 0.5 * (torch.exp((a_in - 0.5) / b) + torch.exp(-(a_in + 0.5) / b))
        log_p = torch.where(a >= 0.5, log_tail, torch.log(centre.clamp_min(LIKELIHOOD_MIN)))
        return -log_p.clamp_min(_LOG_P_MIN) / math.log(2.0)


class FactorizedPrior(nn.Module):
    """Per-channel learned univariate density (Ballé et al. 2018, 'Variational image compression with a
    scale hyperprior', appendix 6.1): a monotone cumulative built from softplus-positive matrices,
    biases and tanh gates. Used for the hyper-latents z_m and z_y."""

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0):
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
        """P(bin of width 1 centred on ``z``) for z of shape (B, C, H, W), in fp32."""
        b, c, h, w = z.shape
        with fp32_region():  # the matrices' products would otherwise run in bf16
            v = fp32(z).transpose(0, 1).reshape(c, 1, -1)
            lower = self.logits_cdf(v - 0.5)
            upper = self.logits_cdf(v + 0.5)
            sign = -torch.sign(lower + upper).detach()  # evaluate in the tail where sigmoid is accurate
            p = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
            return p.view(c, b, h, w).transpose(0, 1)

    def likelihood(self, z: Tensor) -> Tensor:
        return self(z)

    def bits(self, z: Tensor) -> Tensor:
        with fp32_region():
            return -torch.log2(self(z).clamp_min(LIKELIHOOD_MIN))
