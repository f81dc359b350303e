"""The integer tables of one model as ready-to-use ANS models (constriction ``Categorical``), with the
information content of every category for bit accounting."""

from __future__ import annotations

from dataclasses import dataclass

import constriction
import numpy as np
import torch
from torch import nn

from ..model.discrete import PRECISION, FactorizedTable, LaplaceTable, laplace_table
from ..model.likelihood import FactorizedPrior


@dataclass(frozen=True)
class SymbolTable:
    """One integer frequency table over the symbols ``low … high`` plus an escape category at each end."""

    low: int
    high: int
    model: constriction.stream.model.Categorical
    bits: np.ndarray
    """(high − low + 3,) float64: −log2 P of each category under the integer table."""

    @classmethod
    def build(cls, low: int, frequencies: np.ndarray) -> SymbolTable:
        # constriction's fast quantiser gives category i the frequency floor(cumulative weight) + 1 per category;
        # weights f − 1 summing to exactly 2^PRECISION − n make it reproduce ``frequencies`` bit for bit.
        weights = (frequencies - 1).astype(np.float64)
        model = constriction.stream.model.Categorical(weights, perfect=False)
        bits = PRECISION - np.log2(frequencies.astype(np.float64))
        return cls(low=low, high=low + len(frequencies) - 3, model=model, bits=bits)


class CodingTables:
    """Every table the bitstream coder needs for one model: the Laplace and Gaussian scale tables and the
    factorized priors' tables, looked up by the prior module the model hands to ``LatentCoder.factorized``."""

    def __init__(self, model: nn.Module, factorized: dict[str, FactorizedTable], device: torch.device):
        modules = dict(model.named_modules())
        priors = {name for name, m in modules.items() if isinstance(m, FactorizedPrior)}
        if priors != set(factorized):
            missing = min(priors ^ set(factorized))
            raise ValueError(f"coding tables do not match the model's factorized priors (first difference: {missing})")
        self.device = device
        from .gaussian_tables import GaussianScaleCoder  # it builds on SymbolTable, defined above

        self.laplace: LaplaceTable = laplace_table()
        self.boundaries = torch.from_numpy(self.laplace.boundaries).to(device)
        self.laplace_symbols = tuple(
            SymbolTable.build(-int(r), f) for r, f in zip(self.laplace.radii, self.laplace.frequencies)
        )
        gaussian = GaussianScaleCoder(device)
        self._conditional = {"laplace": (self.boundaries, self.laplace_symbols),
                             "gaussian": (gaussian.boundaries, gaussian.symbols)}
        self._factorized: dict[int, tuple[SymbolTable, ...]] = {}
        for name, table in factorized.items():
            symbols = tuple(SymbolTable.build(int(lo), f) for lo, f in zip(table.lows, table.frequencies))
            self._factorized[id(modules[name])] = symbols

    def factorized(self, prior: FactorizedPrior) -> tuple[SymbolTable, ...]:
        """The per-channel tables of ``prior``."""
        return self._factorized[id(prior)]

    def symbols(self, family: str = "laplace") -> tuple[SymbolTable, ...]:
        """The tables of one conditional family ('laplace' for m̂ and ŷ, 'gaussian' for the intra latent)."""
        return self._conditional[family][1]

    def levels(self, scales: torch.Tensor, family: str = "laplace") -> torch.Tensor:
        """Table level of each predicted scale: the number of the family's table boundaries strictly below it.

        Only comparisons with fixed float32 constants: a scale gets another level than on another device only
        if the two devices computed it on different sides of a boundary.
        """
        return torch.bucketize(scales, self._conditional[family][0], right=False)
