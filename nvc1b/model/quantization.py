"""Quantisation: variable-rate quantisation steps, and the latent coders that turn latents into symbols.

A *latent coder* is handed every latent in coding order. ``RateEstimator`` quantises (noise, straight-through
rounding or plain rounding) and returns estimated bits; the bitstream coder of ``nvc1b.coding`` implements the
same two calls with a real entropy coder, so training, evaluation, encoding and decoding share one forward path.
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from .likelihood import FactorizedPrior, gaussian_bits, laplace_bits
from .precision import fp32, fp32_region

LAMBDAS = (85.0, 170.0, 380.0, 840.0)
"""λ of the four rate anchors, q_index 0..3 (paper Section V-A)."""
FINE_LEVELS = 64
"""Number of inference rate levels obtained by log-linear interpolation between the anchors."""

QuantMode = Literal["ste", "noise", "round"]


def as_q_index(q_index: float | int | Tensor | list, batch: int, device: torch.device | None = None) -> Tensor:
    """Per-sample rate position in [0, 3] as a float tensor of shape (batch,). Integers are the anchors;
    fractions interpolate between neighbouring anchors."""
    q = torch.as_tensor(q_index, dtype=torch.float32, device=device)
    if q.dim() == 0:
        q = q.expand(batch)
    if q.shape != (batch,):
        raise ValueError(f"q_index has shape {tuple(q.shape)}, expected ({batch},)")
    checkable = q.device.type != "meta" and not torch.compiler.is_compiling()  # meta: shapes; compiled: no graph break
    if checkable and bool(((q < 0) | (q > len(LAMBDAS) - 1)).any()):
        raise ValueError(f"q_index must lie in [0, {len(LAMBDAS) - 1}], got {q.tolist()}")
    return q


def fine_level_to_q_index(level: int) -> float:
    """Map one of the 64 inference levels to a rate position ``3·level/63`` (DCVC's fine levels).

    A fractional rate position sets the quantisation steps log-linearly between anchor 0 and anchor 3, as DCVC's
    64 fine levels do; an integer one uses that anchor's own steps (the four trained rate points). Levels 21 and
    42 would land on the integers 1 and 2, so they are moved one float32 step below them: they take the log line
    like every other fine level (the anchor and the line differ there; the rate moves by ~1e-7).
    """
    if not 0 <= level < FINE_LEVELS:
        raise ValueError(f"fine rate level must be in 0..{FINE_LEVELS - 1}, got {level}")
    q = level * (len(LAMBDAS) - 1) / (FINE_LEVELS - 1)
    if 0 < level < FINE_LEVELS - 1 and q == round(q):
        q = float(np.nextafter(np.float32(q), np.float32(0)))
    return q


def _log_interp(log_values: Tensor, q: Tensor) -> Tensor:
    lo = q.floor().clamp(0, log_values.numel() - 2)
    frac = q - lo
    lo = lo.long()
    return log_values[lo] * (1 - frac) + log_values[lo + 1] * frac


def lambda_for(q_index: Tensor, lambdas: tuple[float, ...] = LAMBDAS) -> Tensor:
    """λ for per-sample rate positions (log-linear between anchors)."""
    table = torch.tensor(lambdas, device=q_index.device, dtype=torch.float32).log()
    return _log_interp(table, q_index.float()).exp()


def dcvc_fine_scales(scales: Tensor) -> np.ndarray:
    """DCVC's 64 fine-level factors from per-anchor ``scales``, computed exactly as its test code does (numpy,
    float32): ``exp(linspace(log s_0, log s_last, 64))``."""
    a = scales.detach().to("cpu", torch.float32).numpy()
    return np.exp(np.linspace(np.log(a[0]), np.log(a[-1]), FINE_LEVELS))


def anchor_or_fine(scales: Tensor, q_index: Tensor) -> Tensor:
    """Per-sample factor (B,) from per-anchor ``scales`` (A,): the anchor's own value at an integer rate
    position; between integers, exp of the line from log scales[0] to log scales[-1] at q/(A−1) (DCVC's 64 fine
    levels lie on it). Without autograd (evaluation, coding) a rate position within 1e-4 of a fine level takes
    that level's factor as DCVC computes it (``dcvc_fine_scales``), bit for bit."""
    last = scales.numel() - 1
    anchor = scales[q_index.round().long().clamp(0, last)]
    log_lo, log_hi = scales[0].log(), scales[last].log()
    fine = (log_lo + (log_hi - log_lo) * (q_index / last)).exp()
    if not torch.is_grad_enabled() and scales.device.type != "meta" and not torch.compiler.is_compiling():
        grid = q_index * (FINE_LEVELS - 1) / last
        level = grid.round()
        table = torch.from_numpy(dcvc_fine_scales(scales)).to(scales.device, scales.dtype)
        on_level = (grid - level).abs() < 1e-4
        fine = torch.where(on_level, table[level.long().clamp(0, FINE_LEVELS - 1)], fine)
    return torch.where(q_index == q_index.round(), anchor, fine)


class RateControl(nn.Module):
    """Learned per-channel quantisation steps for one coding path, on the encoder side and the decoder side,
    each scaled by a learned per-anchor factor (DCVC's ``q_basic · q_scale[q_index]``); the encoder multiplies a
    feature by its step before the latent is formed, the decoder multiplies the matching feature after it is
    reconstructed."""

    def __init__(self, enc_channels: int, dec_channels: int):
        super().__init__()
        anchors = torch.tensor(LAMBDAS)
        init = (0.5 * torch.log(anchors / anchors[-1])).exp()  # finer steps for larger λ, ~λ^½ as in classic codecs
        self.enc_base = nn.Parameter(torch.ones(enc_channels))
        self.enc_scale = nn.Parameter(init.clone())
        self.dec_base = nn.Parameter(torch.ones(dec_channels))
        self.dec_scale = nn.Parameter(1.0 / init)

    def forward(self, q_index: Tensor, decoder: bool = False) -> Tensor:
        """(B, C, 1, 1) multipliers for per-sample rate positions ``q_index`` (B,), encoder or decoder side.
        (Parameters are read only here, inside forward, so ZeRO-3 can gather them.)"""
        base, scales = (self.dec_base, self.dec_scale) if decoder else (self.enc_base, self.enc_scale)
        return (base[None, :] * anchor_or_fine(scales, q_index)[:, None])[..., None, None]

    def encoder_step(self, q_index: Tensor) -> Tensor:
        return self(q_index, decoder=False)

    def decoder_step(self, q_index: Tensor) -> Tensor:
        return self(q_index, decoder=True)


class LatentCoder(Protocol):
    """Turns latents into quantised values, in the order the decoder will see them."""

    def laplace(self, key: str, y: Tensor | None, means: Tensor, scales: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Code the positions where ``mask`` is 1 of latent ``y`` (None when decoding) under a Laplace of
        ``means``/``scales``; return the reconstruction at those positions (zero elsewhere) and bits (B,)."""
        ...

    def gaussian(self, key: str, y: Tensor | None, means: Tensor, scales: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """As ``laplace``, under a Gaussian of std ``scales`` (the intra latent)."""
        ...

    def factorized(self, key: str, z: Tensor | None, prior: FactorizedPrior, shape: tuple[int, ...]) -> tuple[Tensor, Tensor]:
        """Code hyper-latent ``z`` of ``shape`` under ``prior``; return ẑ and bits per sample (B,)."""
        ...


def _uniform_noise(x: Tensor) -> Tensor:
    """U(-½, ½) drawn in logical (NCHW) order whatever ``x``'s memory layout, so a seed gives the same noise in
    channels_last as in contiguous training."""
    return torch.empty(x.shape, dtype=x.dtype, device=x.device).uniform_(-0.5, 0.5)


def _round_ste(x: Tensor) -> Tensor:
    return x + (torch.round(x) - x).detach()


def clamp_pixels(x: Tensor) -> Tensor:
    """x̂ clamped to [0, 1] in the forward pass (as decoded), with the gradient of the identity: a plain clamp
    gives no gradient to pixels outside the range, so a reconstruction that starts out of range learns slowly."""
    return x + (x.clamp(0, 1) - x).detach()


class RateEstimator:
    """Coder for training and evaluation: no bytes, estimated bits.

    ``ste``: bits from ``v + U(-½, ½)``, reconstruction from straight-through rounding (default for training);
    ``noise``: both from the noisy value; ``round``: both from ``round(v)`` (evaluation).
    """

    def __init__(self, mode: QuantMode = "ste"):
        if mode not in ("ste", "noise", "round"):
            raise ValueError(f"unknown quantisation mode {mode!r}")
        self.mode = mode

    def _quantise(self, v: Tensor) -> tuple[Tensor, Tensor]:
        """(value used for the rate, value used for the reconstruction)."""
        if self.mode == "round":
            q = torch.round(v)
            return q, q
        noisy = v + _uniform_noise(v)
        return noisy, (noisy if self.mode == "noise" else _round_ste(v))

    def laplace(self, key: str, y: Tensor | None, means: Tensor, scales: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        return self._conditional(key, y, means, scales, mask, laplace_bits)

    def gaussian(self, key: str, y: Tensor | None, means: Tensor, scales: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        return self._conditional(key, y, means, scales, mask, gaussian_bits)

    def _conditional(self, key, y, means, scales, mask, bits_of) -> tuple[Tensor, Tensor]:
        if y is None:
            raise ValueError(f"RateEstimator cannot decode latent {key!r}: it needs the latent itself")
        with fp32_region():  # round(y − μ) + μ and its bits in fp32 whatever precision the priors ran in
            y, means, scales, mask = fp32(y), fp32(means), fp32(scales), fp32(mask)
            rate_v, recon_v = self._quantise((y - means) * mask)
            bits = (bits_of(rate_v, scales) * mask).sum(dim=(1, 2, 3))
            return (recon_v + means) * mask, bits

    def factorized(self, key: str, z: Tensor | None, prior: FactorizedPrior, shape: tuple[int, ...]) -> tuple[Tensor, Tensor]:
        if z is None:
            raise ValueError(f"RateEstimator cannot decode latent {key!r}: it needs the latent itself")
        with fp32_region():
            rate_v, recon_v = self._quantise(fp32(z))
            return recon_v, prior.bits(rate_v).sum(dim=(1, 2, 3))

