"""Token coders for VCT: what T_cur's predictions are handed to, one token position of every block at a time.

``TokenEstimator`` quantises and estimates bits (training, evaluation without bytes); ``TokenEncoder`` and
``TokenDecoder`` extend nvc1b's ANS coders with the Gaussian tables of ``gaussian.py``. Positions of one call are
grouped by table level (stable sort: the order depends only on the levels, which both sides compute).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import Tensor

from ...coding.entropy import SymbolDecoder, SymbolEncoder
from ...model.quantization import RateEstimator, _round_ste, _uniform_noise
from .gaussian import gaussian_bits, table, table_levels


class TokenEstimator:
    """Rate estimation: ``ste`` (bits from ỹ + U(−½, ½), ŷ by straight-through rounding), ``noise`` or ``round``."""

    def __init__(self, mode: str = "ste"):
        self.mode = mode

    def gaussian(self, key: str, y: Tensor | None, means: Tensor, scales: Tensor) -> tuple[Tensor, Tensor]:
        """Code ``y`` (B, N, C) under N(means, scales); return ŷ and bits per sample (B,)."""
        if y is None:
            raise ValueError(f"the rate estimator cannot decode latent {key!r}")
        if self.mode == "round":
            y_hat = torch.round(y)
            rate_v = y_hat
        else:
            rate_v = y + _uniform_noise(y)
            y_hat = rate_v if self.mode == "noise" else _round_ste(y)
        return y_hat, gaussian_bits(rate_v, means, scales).flatten(1).sum(dim=1)


def _grouped(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(levels.astype(np.int32), kind="stable")
    return order, np.bincount(levels)


class TokenEncoder(SymbolEncoder):
    """The encoder's ANS coder for one frame, with Gaussian token coding."""

    def gaussian(self, key: str, y: Tensor | None, means: Tensor, scales: Tensor) -> tuple[Tensor, Tensor]:
        if y is None:
            raise ValueError(f"the encoder needs latent {key!r}")
        start = time.perf_counter()
        centre, levels = table_levels(means, scales)
        symbols = self._integers(key, torch.round(y).reshape(-1))
        values = symbols - centre.reshape(-1).cpu().numpy().astype(np.int64)
        levels = levels.reshape(-1).cpu().numpy()
        order, counts = _grouped(levels)
        grouped, begin, bits = values[order], 0, 0.0
        for level in np.flatnonzero(counts):
            end = begin + counts[level]
            bits += self._push(grouped[begin:end], table(int(level)))
            begin = end
        self.add_symbols(symbols)
        self.bits[key] += bits
        self.seconds += time.perf_counter() - start
        y_hat = torch.from_numpy(symbols).to(device=means.device, dtype=means.dtype).view_as(means)
        return y_hat, means.new_tensor([bits])


class TokenDecoder(SymbolDecoder):
    """The decoder's ANS coder for one frame payload, with Gaussian token coding."""

    def gaussian(self, key: str, y: Tensor | None, means: Tensor, scales: Tensor) -> tuple[Tensor, Tensor]:
        start = time.perf_counter()
        centre, levels = table_levels(means, scales)
        levels = levels.reshape(-1).cpu().numpy()
        order, counts = _grouped(levels)
        parts, bits = [], 0.0
        for level in np.flatnonzero(counts):
            values, group_bits = self._pop(key, int(counts[level]), table(int(level)))
            parts.append(values)
            bits += group_bits
        values = np.empty(len(levels), dtype=np.int64)
        values[order] = np.concatenate(parts) if parts else values[:0]
        symbols = values + centre.reshape(-1).cpu().numpy().astype(np.int64)
        self.add_symbols(symbols)
        self.bits[key] += bits
        self.seconds += time.perf_counter() - start
        y_hat = torch.from_numpy(symbols).to(device=means.device, dtype=means.dtype).view_as(means)
        return y_hat, means.new_tensor([bits])


def token_coder(coder, training: bool):
    """The token coder for a step: the bitstream coder as given, else an estimator in the coder's mode."""
    if coder is None:
        return TokenEstimator("ste" if training else "round")
    if isinstance(coder, RateEstimator):
        return TokenEstimator(coder.mode)
    return coder
