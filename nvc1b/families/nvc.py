"""The NVC family (NVC-1B, DCVC-SDD and their scaling-study variants): an adapter over ``nvc1b.model``'s public
entry points and the trainer's NVC clip loss. Nothing here changes how an NVC model is built, trained or coded."""

from __future__ import annotations

from torch import nn

from ..config.model import SECTIONS, ModelConfig
from .base import Family, PartCount, check_parts_and_loss

PART_TITLES = {
    "motion_estimation": "Motion estimation",
    "motion_codec": "Motion encoder-decoder",
    "motion_entropy": "Motion entropy model",
    "temporal_context_mining": "Temporal context mining",
    "contextual_codec": "Contextual encoder-decoder",
    "contextual_entropy": "Contextual entropy model",
}
LOSSES_FOR_PARTS: dict[str, tuple[str, ...]] = {
    "Intra": ("intra",),
    "Inter": ("meD", "meRD"),
    "Recon": ("recD", "recRD"),
    "All": ("all", "all_T"),
}
"""Which losses make sense for which trainable set (paper Section IV-D)."""


def _build(config: ModelConfig) -> nn.Module:
    from ..model.codec import VideoCodec

    return VideoCodec(config)


def _count(config: ModelConfig) -> PartCount:
    from ..model.counting import count_parameters

    count = count_parameters(config)
    return PartCount(config.name, "nvc", dict(count.parts), {"intra": count.intra})


def _part_sets() -> dict[str, tuple[str, ...]]:
    from ..train.clip import PART_SETS

    return PART_SETS


def _set_trainable(model: nn.Module, parts: str) -> list:
    from ..train.clip import set_trainable

    return set_trainable(model, parts)


def _clip_loss(model: nn.Module, spec) -> nn.Module:
    from ..train.clip import ClipLoss

    return ClipLoss(model, spec)


def _check_stage(stage) -> None:
    check_parts_and_loss(stage, LOSSES_FOR_PARTS, "nvc")
    if (stage.parts == "Intra") != (stage.frames == 1):
        raise ValueError("an Intra stage has frames: 1, and only an Intra stage has one frame")
    if stage.weights is not None and stage.parts != "Intra":
        raise ValueError("'weights' is only for the Intra stage")


def _coders():
    from ..coding.entropy import SymbolDecoder, SymbolEncoder

    return SymbolEncoder, SymbolDecoder


class _LazyPartSets(dict):
    def __missing__(self, key):
        self.update(_part_sets())
        return dict.__getitem__(self, key)


NVC = Family(
    name="nvc", config_class=ModelConfig, sections=SECTIONS, build=_build, count=_count, part_titles=PART_TITLES,
    part_sets=_LazyPartSets(), losses_for_parts=LOSSES_FOR_PARTS, set_trainable=_set_trainable,
    clip_loss=_clip_loss, check_stage=_check_stage, symbol_coders=_coders,
    memory_model=True,
)
