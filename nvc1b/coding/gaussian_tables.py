"""Integer tables of the discretised zero-mean Gaussian (a Gaussian convolved with a unit box), for latents coded
with a Gaussian conditional — DCVC-DC's intra coder codes its ŷ so.

Same contract as the Laplace scale table (``nvc1b.model.discrete``, docs/bitstream.md): GAUSSIAN_SCALE_LEVELS
scales log-spaced over [0.01, 64]; per level a support ±R_k with each tail at most
2^-TAIL_BITS, the tails as escape categories, every probability + 1e-5 (as the Laplace table), frequencies ≥ 1 summing to 2^PRECISION (``quantize_pmf``); a
predicted scale takes the level of the number of float32 geometric midpoints strictly below it. Every
probability is computed with Python's ``decimal`` (correctly rounded +, −, ×, ÷, exp, sqrt; erf by a series of
positive terms), so the tables are identical on every machine and need not be stored with a model.

    coder = GaussianScaleCoder(device)          # tables ready for the ANS coder (constriction Categorical)
    levels = coder.levels(scales)                # (N,) int64, like CodingTables.levels
    table = coder.symbols[level]                 # a SymbolTable, coded exactly like a Laplace level's
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Context, Decimal
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from ..model.discrete import PRECISION, PROBABILITY_FLOOR, TAIL_BITS, floored, quantize_pmf
from .tables import SymbolTable

GAUSSIAN_SCALE_MIN = 0.01
"""Smallest Gaussian scale in the table; smaller predicted scales use it. DCVC-DC's coder table starts at 0.11 but
its estimate clamps at 1e-5: from 0.01, with every probability floored as the estimate does (PROBABILITY_FLOOR),
the coded bits follow the estimate (an unlikely symbol ~16.6 bits)."""
GAUSSIAN_SCALE_MAX = 64.0
"""Largest Gaussian scale in the table (DCVC-DC: 64); larger predicted scales use it."""
GAUSSIAN_SCALE_LEVELS = 224
"""Number of scales, log-spaced (ln step ≈ 0.039, as the Laplace table)."""
GAUSSIAN_TABLE_CONSTANTS = ("gaussian", PRECISION, TAIL_BITS, GAUSSIAN_SCALE_MIN, GAUSSIAN_SCALE_MAX,
                            GAUSSIAN_SCALE_LEVELS, str(PROBABILITY_FLOOR))
"""What the tables depend on; a model fingerprint that codes with them should include these."""

_DECIMAL = Context(prec=50)
_ERF_ONE = Decimal(130)
"""x² beyond which erf(x) = 1 to 56 digits (e^{−130} < 10^−56): the series would need ~x² terms."""
_PI = Decimal("3.14159265358979323846264338327950288419716939937510582097494459")


def _erf(x: Decimal) -> Decimal:
    """erf(x) for x ≥ 0 as (2/√π)·e^{−x²}·Σ_n 2^n·x^{2n+1}/(1·3·…·(2n+1)): every term positive, no cancellation."""
    ctx = _DECIMAL
    x2 = ctx.multiply(x, x)
    if x2 > _ERF_ONE:  # 1 − erf(x) < e^{−x²} < 10^−(prec+7): erf(x) is 1 at this precision (small scales' far bins)
        return Decimal(1)
    two_x2 = ctx.multiply(2, x2)
    term, total, n = x, x, 0
    limit = ctx.multiply(total, Decimal(f"1e-{ctx.prec + 2}"))
    while True:
        n += 1
        term = ctx.divide(ctx.multiply(term, two_x2), 2 * n + 1)
        total = ctx.add(total, term)
        if 2 * n + 1 > two_x2 and term < limit:
            break
    factor = ctx.divide(2, ctx.sqrt(_PI))
    return ctx.multiply(ctx.multiply(factor, ctx.exp(ctx.minus(x2))), total)


def _gaussian_pmf(scale: Decimal, tail: Decimal) -> list[Decimal]:
    """[escape-below, P(−R), …, P(R), escape-above] of the unit-binned zero-mean Gaussian of ``scale``, with R the
    smallest radius ≥ 1 whose upper tail P(X > R + ½) is at most ``tail``."""
    ctx = _DECIMAL
    inv = ctx.divide(1, ctx.multiply(scale, ctx.sqrt(Decimal(2))))  # 1/(σ√2)
    half = Decimal("0.5")
    edges = [_erf(ctx.multiply(half, inv))]  # erf((v + ½)/(σ√2)), v = 0, 1, …
    while True:
        v = len(edges)
        edges.append(_erf(ctx.multiply(ctx.add(v, half), inv)))
        if v >= 1 and ctx.multiply(half, ctx.subtract(1, edges[-1])) <= tail:
            break
    # side[v − 1] = P(v), v = 1 … R; the max(0, ·) only guards masses below the working precision (the smallest
    # scale's tail, ~1e-42 against 50 digits)
    zero = Decimal(0)
    side = [max(zero, ctx.multiply(half, ctx.subtract(edges[v], edges[v - 1]))) for v in range(1, len(edges))]
    escape = max(zero, ctx.multiply(half, ctx.subtract(1, edges[-1])))
    return [escape, *reversed(side), edges[0], *side, escape]


@dataclass(frozen=True)
class GaussianTable:
    """Discretised zero-mean Gaussians at GAUSSIAN_SCALE_LEVELS scales (symbol = round(value − mean))."""

    scales: np.ndarray
    """(K,) float64: the table's scales."""
    boundaries: np.ndarray
    """(K−1,) float32: geometric midpoints; a predicted scale s uses level #{boundaries < s}."""
    radii: np.ndarray
    """(K,) int64: level k covers symbols −radii[k] … radii[k]; others are escaped."""
    frequencies: tuple[np.ndarray, ...]
    """Per level, 2·radius + 3 frequencies: [escape-below, −radius, …, radius, escape-above]."""

    def digest(self) -> str:
        """SHA-256 of the boundaries (float32 LE) and every level's frequencies (int64 LE)."""
        sha = hashlib.sha256(self.boundaries.astype("<f4").tobytes())
        for f in self.frequencies:
            sha.update(f.astype("<i8").tobytes())
        return sha.hexdigest()


def build_gaussian_table() -> GaussianTable:
    """Compute the Gaussian scale table from the constants (1–3 s on one core; use the cached ``gaussian_table``)."""
    ctx = _DECIMAL
    lo, hi = Decimal(str(GAUSSIAN_SCALE_MIN)), Decimal(str(GAUSSIAN_SCALE_MAX))
    log_step = ctx.divide(ctx.ln(ctx.divide(hi, lo)), GAUSSIAN_SCALE_LEVELS - 1)
    tail = ctx.power(Decimal(2), -TAIL_BITS)
    scales, radii, frequencies = [], [], []
    for k in range(GAUSSIAN_SCALE_LEVELS):
        scale = ctx.multiply(lo, ctx.exp(ctx.multiply(log_step, k)))
        pmf = _gaussian_pmf(scale, tail)  # only context operations: independent of decimal's global context
        scales.append(float(scale))
        radii.append((len(pmf) - 3) // 2)
        frequencies.append(quantize_pmf(floored(pmf)))
    boundaries = [float(ctx.multiply(lo, ctx.exp(ctx.multiply(log_step, k + Decimal("0.5")))))
                  for k in range(GAUSSIAN_SCALE_LEVELS - 1)]
    return GaussianTable(
        scales=np.asarray(scales), boundaries=np.asarray(boundaries, dtype=np.float32),
        radii=np.asarray(radii, dtype=np.int64), frequencies=tuple(frequencies),
    )


@lru_cache(maxsize=1)
def gaussian_table() -> GaussianTable:
    """The fixed Gaussian scale table (computed once per process, identical on every machine)."""
    return build_gaussian_table()


class GaussianScaleCoder:
    """The Gaussian table as the ANS coder uses it: one ``SymbolTable`` per level and the level of a scale."""

    def __init__(self, device: torch.device | str = "cpu"):
        self.table = gaussian_table()
        self.boundaries = torch.from_numpy(self.table.boundaries).to(device)
        self.symbols: tuple[SymbolTable, ...] = tuple(
            SymbolTable.build(-int(r), f) for r, f in zip(self.table.radii, self.table.frequencies)
        )

    def levels(self, scales: Tensor) -> Tensor:
        """Table level of each predicted scale: the number of boundaries strictly below it (float32 compares
        only, as ``CodingTables.levels``)."""
        return torch.bucketize(scales, self.boundaries, right=False)
