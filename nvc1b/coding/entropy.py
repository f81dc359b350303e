"""The bitstream coder: the ``LatentCoder`` the model calls for every latent, turning symbols into one ANS
stream per frame (encoder) or back (decoder).

Symbols: ``round(v − mean)`` for the Laplace-coded m̂ and ŷ (v already divided by the quantisation step),
``round(z)`` for the hyper-latents. Each quadtree step's positions are coded in one vectorised pass: positions are
grouped by Laplace table level (stable sort, so the order is a function of the levels alone, which both sides
compute) and each group is one call into the ANS coder. A symbol outside its table's support is coded as the
escape category on its side followed by an Elias-gamma code of its distance to the support.

What must be identical on both sides is the level of every position (and the factorized tables, which are
stored with the model); the means only enter the reconstruction ``(symbol + mean)``, which both sides compute
with the same tensor operations. ANS is a stack: the encoder collects the frame's chunks in coding order and
pushes them in reverse when the frame is complete, so the decoder pops them in coding order.
"""

from __future__ import annotations

import time
import zlib
from collections import defaultdict

import constriction
import numpy as np
import torch
from torch import Tensor

from ..errors import BitstreamError
from ..model.likelihood import FactorizedPrior
from .tables import CodingTables, SymbolTable

MAX_SYMBOL = 1 << 22
"""Largest |symbol| the coder accepts (latents beyond it mean broken weights); well inside float32's exact range."""
_GAMMA_BITS = 24
"""Escape distances d ≥ 0 are coded as d + 1 = 2^n + r: n in 0..23 (uniform), then r in n bits (uniform)."""
_UNIFORM = constriction.stream.model.Uniform()
_EXPONENT = constriction.stream.model.Uniform(_GAMMA_BITS)
_POWERS = 1 << np.arange(1, _GAMMA_BITS, dtype=np.int64)


def _positions(mask: Tensor) -> Tensor:
    """Flat indexes (C·h·w raster order) of the positions a quadtree step codes; mask is (1, C, h, w)."""
    return torch.nonzero(mask.reshape(-1) > 0).squeeze(1)


def _single_sample(key: str, means: Tensor) -> None:
    if means.shape[0] != 1:
        raise ValueError(f"the bitstream coder codes one stream per call; latent {key!r} has batch {means.shape[0]}")


def _scatter(values: np.ndarray, positions: Tensor, like: Tensor) -> Tensor:
    """A tensor shaped like ``like`` holding ``values`` at ``positions`` (flat) and zero elsewhere."""
    out = torch.zeros(like.numel(), dtype=like.dtype, device=like.device)
    out[positions] = torch.from_numpy(values).to(device=like.device, dtype=like.dtype)
    return out.view_as(like)


class _Accounting:
    """Bits per latent, seconds spent in entropy coding, and the running checksum of coded symbols."""

    def __init__(self) -> None:
        self.bits: dict[str, float] = defaultdict(float)
        self.seconds = 0.0
        self.checksum = 0

    def add_symbols(self, values: np.ndarray) -> None:
        self.checksum = zlib.crc32(values.astype("<i4").tobytes(), self.checksum)


class SymbolEncoder(_Accounting):
    """Encoder side for one frame of one stream (batch 1): collects chunks, then ``finish`` gives the payload."""

    def __init__(self, tables: CodingTables, where: str = "frame"):
        super().__init__()
        self.tables = tables
        self.where = where
        self._chunks: list[tuple] = []  # (symbols int32, model[, model parameters]) in decoding order

    def laplace(self, key: str, y: Tensor | None, means: Tensor, scales: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        return self._conditional(key, y, means, scales, mask, "laplace")

    def gaussian(self, key: str, y: Tensor | None, means: Tensor, scales: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        return self._conditional(key, y, means, scales, mask, "gaussian")

    def _conditional(self, key: str, y: Tensor | None, means: Tensor, scales: Tensor, mask: Tensor, family: str
                     ) -> tuple[Tensor, Tensor]:
        _single_sample(key, means)
        if y is None:
            raise ValueError(f"the encoder needs latent {key!r}")
        start = time.perf_counter()
        positions = _positions(mask)
        values = self._integers(key, torch.round(y - means).reshape(-1)[positions])
        levels = self.tables.levels(scales.reshape(-1)[positions], family).cpu().numpy()
        order = np.argsort(levels.astype(np.int16), kind="stable")  # int16: numpy's radix sort
        symbols = self.tables.symbols(family)
        counts = np.bincount(levels, minlength=len(symbols))
        grouped, begin, bits = values[order], 0, 0.0
        for level in np.flatnonzero(counts):
            end = begin + counts[level]
            bits += self._push(grouped[begin:end], symbols[level])
            begin = end
        self.add_symbols(values)
        self.bits[key] += bits
        self.seconds += time.perf_counter() - start
        recon = (_scatter(values, positions, means) + means) * mask
        return recon, means.new_tensor([bits])

    def factorized(self, key: str, z: Tensor | None, prior: FactorizedPrior, shape: tuple[int, ...]) -> tuple[Tensor, Tensor]:
        if z is None:
            raise ValueError(f"the encoder needs latent {key!r}")
        _single_sample(key, z)
        start = time.perf_counter()
        values = self._integers(key, torch.round(z).reshape(-1))
        per_channel = values.reshape(z.shape[1], -1)
        bits = sum(self._push(v, table) for v, table in zip(per_channel, self.tables.factorized(prior)))
        self.add_symbols(values)
        self.bits[key] += bits
        self.seconds += time.perf_counter() - start
        z_hat = torch.from_numpy(values).to(device=z.device, dtype=z.dtype).view_as(z)
        return z_hat, z.new_tensor([bits])

    def finish(self) -> bytes:
        """The frame's payload: the ANS words, little-endian."""
        start = time.perf_counter()
        coder = constriction.stream.stack.AnsCoder()
        for chunk in reversed(self._chunks):
            coder.encode_reverse(*chunk)
        payload = coder.get_compressed().astype("<u4").tobytes()
        self.seconds += time.perf_counter() - start
        return payload

    def _integers(self, key: str, values: Tensor) -> np.ndarray:
        array = values.cpu().numpy()
        if not np.isfinite(array).all() or np.abs(array).max(initial=0) > MAX_SYMBOL:
            raise BitstreamError(
                f"{self.where}: latent {key!r} holds non-finite values or values beyond ±{MAX_SYMBOL} quantisation "
                "steps; the model's weights are broken"
            )
        return array.astype(np.int64)

    def _push(self, values: np.ndarray, table: SymbolTable) -> float:
        """Queue one group of symbols coded with ``table`` (plus escapes); return their information content."""
        categories = np.clip(values, table.low - 1, table.high + 1) - (table.low - 1)
        self._chunks.append((categories.astype(np.int32), table.model))
        bits = float(table.bits[categories].sum())
        escaped = (values < table.low) | (values > table.high)
        if escaped.any():
            v = values[escaped]
            distance = np.where(v < table.low, table.low - 1 - v, v - table.high - 1)  # ≥ 0
            gamma = distance + 1
            exponent = (gamma[:, None] >= _POWERS).sum(axis=1)  # floor(log2(gamma))
            self._chunks.append((exponent.astype(np.int32), _EXPONENT))
            has_rest = exponent > 0
            if has_rest.any():
                sizes = (1 << exponent[has_rest]).astype(np.int32)
                self._chunks.append(((gamma[has_rest] - sizes).astype(np.int32), _UNIFORM, sizes))
            bits += len(v) * np.log2(_GAMMA_BITS) + float(exponent.sum())
        return bits


class SymbolDecoder(_Accounting):
    """Decoder side for one frame payload of one stream (batch 1)."""

    def __init__(self, tables: CodingTables, payload: bytes, where: str = "frame"):
        super().__init__()
        self.tables = tables
        self.where = where
        if len(payload) % 4:
            raise BitstreamError(f"{where}: payload of {len(payload)} bytes is not a whole number of 32-bit words")
        words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
        try:
            self._coder = constriction.stream.stack.AnsCoder(words)
        except ValueError as exc:
            raise BitstreamError(f"{where}: payload is not valid ANS data ({exc})") from None

    def laplace(self, key: str, y: Tensor | None, means: Tensor, scales: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        return self._conditional(key, means, scales, mask, "laplace")

    def gaussian(self, key: str, y: Tensor | None, means: Tensor, scales: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        return self._conditional(key, means, scales, mask, "gaussian")

    def _conditional(self, key: str, means: Tensor, scales: Tensor, mask: Tensor, family: str) -> tuple[Tensor, Tensor]:
        _single_sample(key, means)
        start = time.perf_counter()
        positions = _positions(mask)
        levels = self.tables.levels(scales.reshape(-1)[positions], family).cpu().numpy()
        order = np.argsort(levels.astype(np.int16), kind="stable")
        symbols = self.tables.symbols(family)
        counts = np.bincount(levels, minlength=len(symbols))
        grouped, bits = [], 0.0
        for level in np.flatnonzero(counts):
            values, group_bits = self._pop(key, int(counts[level]), symbols[level])
            grouped.append(values)
            bits += group_bits
        values = np.empty(len(levels), dtype=np.int64)
        values[order] = np.concatenate(grouped) if grouped else values[:0]
        self.add_symbols(values)
        self.bits[key] += bits
        self.seconds += time.perf_counter() - start
        recon = (_scatter(values, positions, means) + means) * mask
        return recon, means.new_tensor([bits])

    def factorized(self, key: str, z: Tensor | None, prior: FactorizedPrior, shape: tuple[int, ...]) -> tuple[Tensor, Tensor]:
        if shape[0] != 1:
            raise ValueError(f"the bitstream coder codes one stream per call; latent {key!r} has batch {shape[0]}")
        start = time.perf_counter()
        count = int(np.prod(shape[2:]))
        decoded = [self._pop(key, count, table) for table in self.tables.factorized(prior)]
        values = np.concatenate([v for v, _ in decoded])
        bits = sum(b for _, b in decoded)
        self.add_symbols(values)
        self.bits[key] += bits
        self.seconds += time.perf_counter() - start
        z_hat = torch.from_numpy(values).to(device=self.tables.device, dtype=torch.float32).view(shape)
        return z_hat, z_hat.new_tensor([bits])

    def finish(self) -> None:
        """Check that the frame's symbols used the payload exactly."""
        if not self._coder.is_empty():
            raise BitstreamError(f"{self.where}: payload has data left after the last latent")

    def _pop(self, key: str, count: int, table: SymbolTable) -> tuple[np.ndarray, float]:
        """Decode ``count`` symbols coded with ``table`` (and their escapes); return them and their bits."""
        categories = self._coder.decode(table.model, count).astype(np.int64)
        values = categories + (table.low - 1)
        bits = float(table.bits[categories].sum())
        below, above = categories == 0, categories == table.high - table.low + 2
        escaped = below | above
        if escaped.any():
            n = int(escaped.sum())
            exponent = self._coder.decode(_EXPONENT, n).astype(np.int64)
            if exponent.min() < 0 or exponent.max() >= _GAMMA_BITS:
                raise BitstreamError(f"{self.where}: invalid escape code in latent {key!r}")
            gamma = 1 << exponent
            has_rest = exponent > 0
            if has_rest.any():
                sizes = gamma[has_rest].astype(np.int32)
                gamma[has_rest] += self._coder.decode(_UNIFORM, sizes).astype(np.int64)
            distance = gamma - 1
            values[escaped] = np.where(below[escaped], table.low - 1 - distance, table.high + 1 + distance)
            if np.abs(values).max() > MAX_SYMBOL:
                raise BitstreamError(f"{self.where}: escaped value out of range in latent {key!r}")
            bits += n * np.log2(_GAMMA_BITS) + float(exponent.sum())
        return values, bits
