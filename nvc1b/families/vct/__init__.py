"""VCT, the video compression transformer (Mentzer et al., NeurIPS 2022; seed 001), as an nvc1b model family."""

from __future__ import annotations

import torch
from torch import nn

from ..base import Family, PartCount, check_parts_and_loss
from .config import SECTIONS, VctConfig

PART_TITLES = {
    "encoder": "Image encoder E",
    "decoder": "Image decoder D",
    "entropy_model": "Transformer entropy model",
    "lrp": "Latent residual predictor",
}


def _build(config: VctConfig) -> nn.Module:
    from .codec import VctCodec

    return VctCodec(config)


def _count(config: VctConfig) -> PartCount:
    from .codec import VctCodec

    with torch.device("meta"):
        model = VctCodec(config)
    parts = {name: sum(p.numel() for p in part.parameters()) for name, part in model.parts().items()}
    parts["encoder"] += sum(p.numel() for p in model.rate.parameters())
    em = model.entropy_model
    extra = {
        "T_sep": sum(p.numel() for p in em.mixer.sep.parameters()) + em.mixer.position_sep.numel()
        + sum(p.numel() for p in em.mixer.embed.parameters()) + sum(p.numel() for p in em.mixer.embed_norm.parameters()),
        "T_joint": sum(p.numel() for p in em.mixer.joint.parameters()) + em.mixer.position_joint.numel()
        + sum(p.numel() for p in em.mixer.norm.parameters()),
        "T_cur": sum(p.numel() for p in em.current.parameters()),
        "hyperprior": sum(p.numel() for p in model.hyperprior.parameters()),
    }
    return PartCount(config.name, "vct", parts, extra)


def _set_trainable(model: nn.Module, parts: str) -> list:
    from .clip import set_trainable

    return set_trainable(model, parts)


def _clip_loss(model: nn.Module, spec) -> nn.Module:
    from .clip import VctClipLoss

    return VctClipLoss(model, spec)


def _check_stage(stage) -> None:
    from .clip import LOSSES_FOR_PARTS

    check_parts_and_loss(stage, LOSSES_FOR_PARTS, "vct")
    if (stage.parts == "Transforms") != (stage.frames == 1):
        raise ValueError("a Transforms stage (Table 1, stage I) has frames: 1, and only it has one frame")
    if stage.weights is not None:
        raise ValueError("'weights' is only for the nvc family's Intra stage")


def _coders():
    from .coder import TokenDecoder, TokenEncoder

    return TokenEncoder, TokenDecoder


def _constants() -> str:
    from . import gaussian

    return "vct-gaussian:" + repr((gaussian.SCALE_MIN, gaussian.SCALE_MAX, gaussian.SCALE_LEVELS,
                                   gaussian.OFFSET_LEVELS, gaussian.TAIL_SIGMAS, gaussian.LIKELIHOOD_MIN))


VCT = Family(
    name="vct", config_class=VctConfig, sections=SECTIONS, build=_build, count=_count, part_titles=PART_TITLES,
    part_sets={"Transforms": ("encoder", "decoder", "hyperprior"), "Transformers": ("entropy_model",),
               "All": ("encoder", "decoder", "entropy_model", "lrp")},
    losses_for_parts={"Transforms": ("rd",), "Transformers": ("rate",), "All": ("rd",)},
    set_trainable=_set_trainable, clip_loss=_clip_loss, check_stage=_check_stage, symbol_coders=_coders,
    coding_constants=_constants,
)
