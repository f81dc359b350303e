"""Integer probability tables for entropy coding: the fixed Laplace scale table for m̂ and ŷ, and the per-channel
tables of the factorized priors of the hyper-latents (the intra latent's Gaussian table: ``nvc1b.coding.gaussian_tables``).

A table is a list of integer frequencies (each ≥ 1) summing to ``2**PRECISION`` over the categories
``[escape-below, low, …, high, escape-above]``; a symbol outside ``[low, high]`` is coded as its escape category
followed by its distance to the support (see ``nvc1b.coding.entropy``). Encoder and decoder must use the very
same integers, so:

- the Laplace tables depend on nothing but the constants below and are computed with ``decimal`` (correctly
  rounded software arithmetic), hence identical on every machine;
- the factorized tables depend on the weights; they are computed once, in float64 on the CPU, when the model is
  exported (``nvc1b.model.export``) and stored with it, so no device ever recomputes them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Context, Decimal
from functools import lru_cache

import numpy as np
import torch

from .likelihood import FactorizedPrior

PRECISION = 24
"""Bits of the fixed-point probabilities (the precision of constriction's default ANS coder)."""
TAIL_BITS = 20
"""Each table's support leaves at most 2^-TAIL_BITS of probability mass on either side to its escape symbol."""
SCALE_MIN = 0.01
"""Smallest Laplace scale in the table (DCVC's coder table starts here too); smaller predicted scales use it."""
SCALE_MAX = 64.0
"""Largest Laplace scale in the table; larger predicted scales are coded with this one."""
SCALE_LEVELS = 224
"""Number of Laplace scales, log-spaced from SCALE_MIN to SCALE_MAX (ln step ≈ 0.039)."""
PROBABILITY_FLOOR = Decimal("0.00001")
"""Added to every category's probability before quantising (DCVC's estimate adds 1e-5 to every probability; its
16-bit coder gives every symbol at least 2^-16): an unlikely symbol costs about what the model's estimate says,
at most ~16.6 bits instead of 24."""
FACTORIZED_RANGE_MAX = 1 << 14
"""Widest support searched for a factorized prior's table: values beyond ±2^14 are always escaped."""

_DECIMAL = Context(prec=40)


def floored(probabilities: Sequence[Decimal] | Sequence[float]) -> list:
    """Each probability plus PROBABILITY_FLOOR (Decimal or float as given)."""
    if probabilities and isinstance(probabilities[0], Decimal):
        return [p + PROBABILITY_FLOOR for p in probabilities]
    return [p + float(PROBABILITY_FLOOR) for p in probabilities]


def quantize_pmf(probabilities: Sequence[Decimal] | Sequence[float]) -> np.ndarray:
    """Integer frequencies ≥ 1, summing to ``2**PRECISION``, approximately proportional to ``probabilities``.

    Each category gets 1 plus the floor of its share of the remaining weight; the units left over go to the
    categories with the largest fractional shares (ties to the lower index). Only exact integer and correctly
    rounded operations are used, so equal inputs give equal tables on every machine.
    """
    n = len(probabilities)
    free = (1 << PRECISION) - n
    if n < 2 or free <= 0:
        raise ValueError(f"a table needs between 2 and 2^{PRECISION} categories, got {n}")
    if isinstance(probabilities[0], Decimal):
        total = sum(probabilities, Decimal(0))
        exact = [_DECIMAL.divide(_DECIMAL.multiply(p, free), total) for p in probabilities]
    else:
        total = math.fsum(probabilities)
        exact = [p * free / total for p in probabilities]
    if not all(0 <= e <= free for e in exact):
        raise ValueError("probabilities must be finite and non-negative")
    shares = [int(e) for e in exact]
    left = free - sum(shares)
    for i in sorted(range(n), key=lambda i: (shares[i] - exact[i], i))[:left]:
        shares[i] += 1
    return np.asarray(shares, dtype=np.int64) + 1


@dataclass(frozen=True)
class LaplaceTable:
    """Discretised zero-mean Laplace distributions at SCALE_LEVELS scales (symbol = round(value − mean))."""

    scales: np.ndarray
    """(K,) float64: the table's scales."""
    boundaries: np.ndarray
    """(K−1,) float32: geometric midpoints; a predicted scale s uses level #{boundaries < s}."""
    radii: np.ndarray
    """(K,) int64: level k covers symbols −radii[k] … radii[k]; others are escaped."""
    frequencies: tuple[np.ndarray, ...]
    """Per level, 2·radius + 3 frequencies: [escape-below, −radius, …, radius, escape-above]."""


def _laplace_pmf(scale: Decimal, radius: int) -> list[Decimal]:
    """P(symbol) of a unit-binned zero-mean Laplace for −radius … radius, with both tails as the two ends."""
    half = _DECIMAL.exp(-Decimal("0.5") / scale)  # exp(−½/s)
    ratio = _DECIMAL.exp(-1 / scale)  # exp(−1/s)
    side = [half * (1 - ratio) / 2]  # P(v = 1) = ½·(e^{−½/s} − e^{−3/2s}); P(v+1) = P(v)·e^{−1/s}
    for _ in range(radius - 1):
        side.append(side[-1] * ratio)
    tail = half * _DECIMAL.power(ratio, radius) / 2  # ½·e^{−(R+½)/s}
    return [tail, *reversed(side), 1 - half, *side, tail]


@lru_cache(maxsize=1)
def laplace_table() -> LaplaceTable:
    """The fixed Laplace scale table (computed once per process, identical on every machine)."""
    lo, hi = Decimal(str(SCALE_MIN)), Decimal(str(SCALE_MAX))
    log_step = _DECIMAL.divide(_DECIMAL.ln(hi / lo), SCALE_LEVELS - 1)
    tail_log = (TAIL_BITS - 1) * _DECIMAL.ln(Decimal(2))
    scales, radii, frequencies = [], [], []
    for k in range(SCALE_LEVELS):
        scale = lo * _DECIMAL.exp(log_step * k)
        radius = max(1, int((scale * tail_log - Decimal("0.5")).to_integral_value(rounding=ROUND_CEILING)))
        scales.append(float(scale))
        radii.append(radius)
        frequencies.append(quantize_pmf(floored(_laplace_pmf(scale, radius))))
    boundaries = [float(lo * _DECIMAL.exp(log_step * (k + Decimal("0.5")))) for k in range(SCALE_LEVELS - 1)]
    return LaplaceTable(
        scales=np.asarray(scales), boundaries=np.asarray(boundaries, dtype=np.float32),
        radii=np.asarray(radii, dtype=np.int64), frequencies=tuple(frequencies),
    )


@dataclass(frozen=True)
class FactorizedTable:
    """Integer tables of one factorized prior, one per channel (symbol = round(z))."""

    lows: np.ndarray
    """(C,) int64: smallest in-support value of each channel."""
    frequencies: tuple[np.ndarray, ...]
    """Per channel: [escape-below, low, …, high, escape-above] frequencies."""

    def pack(self) -> dict[str, torch.Tensor]:
        """Tensors to store in an export: lows (C,), lengths (C,), frequencies (C, L) zero-padded, all int32."""
        lengths = np.asarray([len(f) for f in self.frequencies])
        padded = np.zeros((len(self.frequencies), lengths.max()), dtype=np.int32)
        for c, f in enumerate(self.frequencies):
            padded[c, : len(f)] = f
        return {
            "lows": torch.from_numpy(self.lows.astype(np.int32)),
            "lengths": torch.from_numpy(lengths.astype(np.int32)),
            "frequencies": torch.from_numpy(padded),
        }

    @classmethod
    def unpack(cls, tensors: dict[str, torch.Tensor]) -> FactorizedTable:
        """Inverse of ``pack``; checks that each table is a valid frequency table."""
        lows, lengths, padded = (tensors[k].cpu().numpy().astype(np.int64) for k in ("lows", "lengths", "frequencies"))
        if lows.shape != lengths.shape or padded.shape[0] != lows.shape[0] or lengths.max() > padded.shape[1]:
            raise ValueError("inconsistent factorized table shapes")
        frequencies = tuple(padded[c, : lengths[c]] for c in range(len(lows)))
        for f in frequencies:
            if len(f) < 3 or f.min() < 1 or f.sum() != 1 << PRECISION:
                raise ValueError("a factorized table does not sum to 2^PRECISION")
        return cls(lows=lows, frequencies=frequencies)


def _cdf(prior: FactorizedPrior, points: torch.Tensor) -> torch.Tensor:
    """P(Z ≤ point) for points (C, N)."""
    return torch.sigmoid(prior.logits_cdf(points[:, None, :])[:, 0, :])


def factorized_table(prior: FactorizedPrior) -> FactorizedTable:
    """Per-channel integer tables of ``prior``, computed in float64 on the CPU (done once, at export)."""
    prior64 = copy.deepcopy(prior).to("cpu", torch.float64)
    tail = 2.0**-TAIL_BITS
    channels = prior64.channels
    with torch.no_grad():
        half_range = 64
        while True:
            ends = torch.tensor([-half_range - 0.5, half_range + 0.5], dtype=torch.float64).expand(channels, 2)
            edge = _cdf(prior64, ends.contiguous())
            if (edge[:, 0].max() <= tail and (1 - edge[:, 1]).max() <= tail) or half_range >= FACTORIZED_RANGE_MAX:
                break
            half_range *= 2
        points = torch.arange(-half_range, half_range + 2, dtype=torch.float64) - 0.5  # v − ½ for v in [−R, R+1]
        upper_logits = prior64.logits_cdf(points.expand(channels, -1).contiguous()[:, None, :])[:, 0, :]
    lows, frequencies = [], []
    cdfs, sfs = torch.sigmoid(upper_logits).numpy(), torch.sigmoid(-upper_logits).numpy()
    for c in range(channels):
        cdf, sf = cdfs[c], sfs[c]  # P(Z ≤ v − ½) and P(Z > v − ½), v = −R … R+1; sf is accurate in the upper tail
        inside = np.flatnonzero((cdf[1:] > tail) & (sf[:-1] > tail))  # bins v with mass beyond both tails
        first, last = (inside[0], inside[-1]) if inside.size else (half_range, half_range)
        # bin v = −R + i spans points i and i+1; mass by differences on the side where they are accurate
        mass = np.where(cdf[1:] < 0.5, cdf[1:] - cdf[:-1], sf[:-1] - sf[1:])[first : last + 1]
        below, above = cdf[first], sf[last + 1]
        lows.append(first - half_range)
        frequencies.append(quantize_pmf(floored([float(below), *np.maximum(mass, 0.0).tolist(), float(above)])))
    return FactorizedTable(lows=np.asarray(lows, dtype=np.int64), frequencies=tuple(frequencies))
