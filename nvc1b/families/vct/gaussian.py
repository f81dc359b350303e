"""The PMF of VCT's symbols: a Gaussian convolved with a unit box, evaluated at the integers (Section 3.4), for
rate estimation in training and, discretised into fixed integer tables, for the bitstream.

Symbols are ŷ = round(ỹ). For coding, a symbol is written relative to round(μ): k = ŷ − round(μ), under the table
of its (scale level, mean-offset level); the table of each level is built once per process from the constants
below with float64 CPU arithmetic only, so encoder and decoder on the same machine type get the same integers.
"""

from __future__ import annotations

import itertools
import math
from functools import cache

import numpy as np
import torch
from torch import Tensor

from ...coding.tables import SymbolTable
from ...model.discrete import quantize_pmf
from ...model.precision import fp32, fp32_region
from .transformer import SCALE_MIN

SCALE_MAX = 64.0
SCALE_LEVELS = 64
"""Gaussian scales of the tables, log-spaced from SCALE_MIN to SCALE_MAX."""
OFFSET_LEVELS = 8
"""Levels of the fractional mean μ − round(μ) ∈ [−½, ½] the tables are built at."""
TAIL_SIGMAS = 6.0
"""A table covers ±(6σ + 1) around the mean; symbols beyond are escaped."""
LIKELIHOOD_MIN = 1e-9


def gaussian_bits(values: Tensor, means: Tensor, scales: Tensor) -> Tensor:
    """−log2 P of each value under N(μ, σ) convolved with U(−½, ½), in fp32."""
    with fp32_region():
        v, m, s = fp32(values), fp32(means), fp32(scales)
        d = (v - m).abs()  # the upper tail is evaluated on the far side of 0 for precision
        upper = torch.special.ndtr((0.5 - d) / s)
        lower = torch.special.ndtr((-0.5 - d) / s)
        return -torch.log2((upper - lower).clamp_min(LIKELIHOOD_MIN))


def _scale_grid() -> np.ndarray:
    return np.exp(np.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), SCALE_LEVELS))


SCALE_BOUNDARIES = torch.tensor(np.sqrt(_scale_grid()[1:] * _scale_grid()[:-1]), dtype=torch.float32)
OFFSET_BOUNDARIES = torch.tensor(np.linspace(-0.5, 0.5, OFFSET_LEVELS + 1)[1:-1], dtype=torch.float32)


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@cache
def symbol_table(scale_level: int, offset_level: int) -> SymbolTable:
    """The integer table of k = ŷ − round(μ) at one (scale, mean offset) level, escapes at both ends."""
    sigma = float(_scale_grid()[scale_level])
    offset = -0.5 + (offset_level + 0.5) / OFFSET_LEVELS
    radius = math.ceil(TAIL_SIGMAS * sigma + 1)
    edges = [_phi((k - 0.5 - offset) / sigma) for k in range(-radius, radius + 2)]
    probabilities = [edges[0]] + [b - a for a, b in itertools.pairwise(edges)] + [1.0 - edges[-1]]
    probabilities = [max(p, 0.0) for p in probabilities]
    return SymbolTable.build(-radius, quantize_pmf(probabilities))


def table_levels(means: Tensor, scales: Tensor) -> tuple[Tensor, Tensor]:
    """(round(μ), level index) of every position: scale level × OFFSET_LEVELS + offset level. Only rounding and
    comparisons with fixed float32 constants, so both sides agree wherever they computed the same μ and σ."""
    means, scales = means.contiguous(), scales.contiguous()
    centre = torch.round(means)
    scale_level = torch.bucketize(scales, SCALE_BOUNDARIES.to(scales.device))
    offset_level = torch.bucketize(means - centre, OFFSET_BOUNDARIES.to(means.device))
    return centre, scale_level * OFFSET_LEVELS + offset_level


def table(level: int) -> SymbolTable:
    return symbol_table(level // OFFSET_LEVELS, level % OFFSET_LEVELS)
