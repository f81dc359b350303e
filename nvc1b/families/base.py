"""What a model family gives the platform: its config, model, parts with their parameter counts, stage
part-sets and losses, training clip loss and coders. Engine, data, eval, cluster and sweep code reach a family only
through this interface (``nvc1b.families.get_family`` / ``family_of``), never through its internals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn


@dataclass(frozen=True)
class PartCount:
    """Parameters of a model per part (counted on the meta device)."""

    preset: str
    family: str
    parts: dict[str, int]
    """Parameters of each coding part, in the family's order."""
    extra: dict[str, int] = field(default_factory=dict)
    """Parts not counted in the total (NVC's intra coder, VCT's stage-I hyperprior)."""

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def as_json(self) -> dict:
        return {"preset": self.preset, "family": self.family, "parts": dict(self.parts), **self.extra,
                "total": self.total}


@dataclass(frozen=True)
class Family:
    """One model family, registered by name."""

    name: str
    config_class: type
    """The pydantic class of the family's presets."""
    sections: tuple[str, ...]
    """Sections every preset file of the family must give."""
    build: Callable[[Any], nn.Module]
    """Model from a validated config."""
    count: Callable[[Any], PartCount]
    """Parameters per part of a config."""
    part_titles: dict[str, str]
    """Display names of the parts, in order (``nvc1b params``)."""
    part_sets: dict[str, tuple[str, ...]]
    """Trainable parts of each stage type of the family's schedules."""
    losses_for_parts: dict[str, tuple[str, ...]]
    """Losses each stage type may use."""
    set_trainable: Callable[[nn.Module, str], list]
    """Freeze all but a stage type's parts; returns the trainable parameters."""
    clip_loss: Callable[[nn.Module, Any], nn.Module]
    """The module DeepSpeed wraps for a stage: (model, ClipSpec) → forward(frames, q_index) → (loss, metrics)."""
    check_stage: Callable[[Any], None]
    """Raises ValueError for a stage (parts, loss, frames, weights) this family cannot train."""
    symbol_coders: Callable[[], tuple[type, type]]
    """(encoder class, decoder class) of the bitstream coder the model's steps call."""
    coding_constants: Callable[[], str] = lambda: ""
    """The constants of the family's own probability tables, hashed into the coding fingerprint."""
    memory_model: bool = False
    """Whether nvc1b.perf's memory model covers the family (per-frame checkpointing ``auto``, memory tables)."""


def check_parts_and_loss(stage: Any, losses_for_parts: dict[str, tuple[str, ...]], family: str) -> None:
    """A stage's ``parts`` is one of the family's stage types and its ``loss`` one that trains them."""
    if stage.parts not in losses_for_parts:
        raise ValueError(f"parts '{stage.parts}' is not a stage type of the {family} family "
                         f"(use {', '.join(losses_for_parts)})")
    if stage.loss not in losses_for_parts[stage.parts]:
        raise ValueError(f"loss '{stage.loss}' does not train parts '{stage.parts}' "
                         f"(use {' or '.join(losses_for_parts[stage.parts])})")
