"""A model ready to code bitstreams (network, coding tables, fingerprint) and the execution context in which
encoder and decoder run it so that both compute the very same floats."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..families import family_of
from ..families.export import load_export
from ..model.discrete import PRECISION, SCALE_LEVELS, SCALE_MAX, SCALE_MIN, TAIL_BITS, FactorizedTable
from ..model.export import ModelExport
from .container import FINGERPRINT_BYTES
from .gaussian_tables import GAUSSIAN_TABLE_CONSTANTS
from .tables import CodingTables


@dataclass
class CodingModel:
    """An exported model on a device, with its coding tables and the fingerprint streams carry."""

    model: nn.Module
    """The model of any family (its steps: ``intra_step`` / ``inter_step``)."""
    tables: CodingTables
    fingerprint: bytes
    """16 bytes identifying preset, weights and coding tables; a stream decodes only with the same."""
    device: torch.device
    source: str
    """Where the model came from (export path), for messages."""

    @property
    def preset(self) -> str:
        return self.model.config.name

    @property
    def family(self) -> str:
        return family_of(self.model).name

    def symbol_encoder(self, where: str):
        """The family's bitstream coder for one frame (encoder side)."""
        return family_of(self.model).symbol_coders()[0](self.tables, where=where)

    def symbol_decoder(self, payload: bytes, where: str):
        """The family's bitstream coder for one frame payload (decoder side)."""
        return family_of(self.model).symbol_coders()[1](self.tables, payload, where=where)

    @classmethod
    def from_export(cls, export: ModelExport, device: str | torch.device | None = None) -> CodingModel:
        device = torch.device(device) if device is not None else next(export.model.parameters()).device
        model = export.model.to(device).eval()
        return cls(
            model=model, tables=CodingTables(model, export.tables, device),
            fingerprint=coding_fingerprint(export.fingerprint, export.tables, family_of(model).coding_constants()),
            device=device, source=str(export.path),
        )


def load_coding_model(checkpoint: str | Path, device: str | torch.device = "cpu") -> CodingModel:
    """The model of an export file or run directory (its newest export), ready to encode and decode."""
    return CodingModel.from_export(load_export(checkpoint, "cpu"), device)


def coding_fingerprint(weights_fingerprint: str, tables: dict[str, FactorizedTable], family_constants: str = "") -> bytes:
    """SHA-256 (first 16 bytes) over the weights fingerprint (which covers the preset), the Laplace and
    Gaussian table constants, a family's own table constants and every factorized table."""
    digest = hashlib.sha256(weights_fingerprint.encode())
    digest.update(repr((PRECISION, TAIL_BITS, SCALE_MIN, SCALE_MAX, SCALE_LEVELS)).encode())
    digest.update(repr(GAUSSIAN_TABLE_CONSTANTS).encode())
    if family_constants:  # the constants of a family's own tables (none for nvc)
        digest.update(family_constants.encode())
    for name in sorted(tables):
        digest.update(name.encode())
        for tensor in tables[name].pack().values():
            digest.update(tensor.numpy().astype("<i4").tobytes())
    return digest.digest()[:FINGERPRINT_BYTES]


@contextmanager
def coding_context(device: torch.device, cpu_threads: int) -> Iterator[None]:
    """Run the networks as the bitstream coder does: inference mode, batch of one stream, and on the CPU exactly
    ``cpu_threads`` intra-op threads; on a GPU deterministic cuDNN without TF32.

    oneDNN's convolutions give results that differ in the last bits with the thread count and the batch size, and
    a scale that falls on the other side of a table boundary would derail the decoder; fixing both makes the
    decoder's floats equal to the encoder's on the same machine and software.
    """
    saved_threads, saved_tf32 = torch.get_num_threads(), torch.backends.cuda.matmul.allow_tf32
    try:
        if device.type == "cpu" and cpu_threads > 0:
            torch.set_num_threads(cpu_threads)
        torch.backends.cuda.matmul.allow_tf32 = False
        with torch.inference_mode(), torch.backends.cudnn.flags(
            enabled=True, benchmark=False, deterministic=True, allow_tf32=False
        ):
            yield
    finally:
        torch.set_num_threads(saved_threads)
        torch.backends.cuda.matmul.allow_tf32 = saved_tf32
