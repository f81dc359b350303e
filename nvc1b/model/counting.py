"""Parameter counts per coding part, on the meta device: the 1.36B preset costs no memory to count."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config.model import ModelConfig
from .codec import VideoCodec


@dataclass(frozen=True)
class ParameterCount:
    preset: str
    parts: dict[str, int]
    """Parameters of each of the six P-frame parts."""
    intra: int
    """Parameters of the intra coder (not part of the P-frame total, as in the paper)."""

    @property
    def total(self) -> int:
        """P-frame model: the six parts."""
        return sum(self.parts.values())

    def as_json(self) -> dict:
        return {"preset": self.preset, "parts": dict(self.parts), "intra": self.intra, "total": self.total}


def count_parameters(config: ModelConfig) -> ParameterCount:
    with torch.device("meta"):
        model = VideoCodec(config)
    parts = {name: sum(p.numel() for p in part.parameters()) for name, part in model.parts().items()}
    return ParameterCount(config.name, parts, sum(p.numel() for p in model.intra.parameters()))
