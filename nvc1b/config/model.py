"""Model presets: the width/depth/block-type knobs of each coding part, as validated data.

A preset is a YAML file (``nvc1b/presets/<name>.yaml`` or any path) whose keys mirror the classes below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, PositiveInt, model_validator

from ..errors import ConfigError
from .loading import Strict, read_yaml, validate

BlockType = Literal["conv", "mixed", "swin"]
PartName = Literal[
    "motion_estimation", "motion_codec", "motion_entropy",
    "temporal_context_mining", "contextual_codec", "contextual_entropy",
]
PARTS: tuple[str, ...] = PartName.__args__  # type: ignore[attr-defined]
PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"

Triple = tuple[PositiveInt, PositiveInt, PositiveInt]


class Interface(Strict):
    """Tensors handed between parts; fixed while one part is resized, so parts scale independently."""

    motion_latent_channels: PositiveInt = 64
    """C_m: channels of the motion latent m_t at H/16 (divisible by 4 for the quadtree prior)."""
    latent_channels: PositiveInt = 128
    """C_y: channels of the contextual latent y_t at H/16 (divisible by 4)."""
    context_channels: Triple = (48, 64, 96)
    """Widths of the temporal contexts C⁰ (H), C¹ (H/2), C² (H/4) given to the contextual parts."""
    feature_channels: PositiveInt = 48
    """C_F: channels of the reference feature F̂_t that the reconstruction net hands to the next frame."""


class MotionEstimation(Strict):
    """Structure/detail SpyNet."""

    levels: int = Field(4, ge=1, le=6)
    """Pyramid levels of SpyNet (the paper: 4)."""
    width: float = Field(1.0, gt=0)
    """Multiplier on the widths 32, 64, 32, 16 of each level's five 7×7 convs (1.0 = the paper's SpyNet)."""


class MotionCodec(Strict):
    """Motion encoder-decoder: joint structure+detail flows → m_t → two flow heads."""

    channels: PositiveInt = 64
    """Width of every encoder and decoder stage."""
    blocks: PositiveInt = 1
    """Blocks in each block slot (1 = DCVC-SDD)."""
    block_type: BlockType = "conv"
    """conv: depthwise-conv blocks; mixed: each followed by a Swin pair; swin: Swin pairs only."""


class EntropyModel(Strict):
    hyper_channels: PositiveInt
    """Channels of the hyper-latent z (and of the hyper-decoder)."""
    prior_channels: PositiveInt
    """Hidden width of the prior-fusion and spatial-prior nets."""
    fusion_blocks: int = Field(2, ge=1)
    """Blocks of the prior-fusion net."""
    spatial_blocks: int = Field(3, ge=1)
    """Blocks of the shared quadtree spatial-prior net."""
    block_type: BlockType = "conv"
    """Block type of the fusion and spatial-prior nets."""


class MotionEntropy(EntropyModel):
    """Hyperprior + latent prior (previous m̂) + quadtree spatial prior for m̂_t."""

    hyper_channels: PositiveInt = 64
    prior_channels: PositiveInt = 192


class ContextualEntropy(EntropyModel):
    """Hyperprior + latent prior (previous ŷ) + temporal prior (from C²) + quadtree spatial prior for ŷ_t."""

    hyper_channels: PositiveInt = 128
    prior_channels: PositiveInt = 384
    temporal_channels: PositiveInt = 96
    """Width of the temporal-prior encoder (two stride-2 convs from C² at H/4 to H/16)."""


class TemporalContextMining(Strict):
    """Feature pyramid, offset-diversity warping (structure and detail), ConvLSTM long-term reference, fusion."""

    channels: Triple = (48, 64, 96)
    """Pyramid widths at H, H/2, H/4 (the ConvLSTM runs at the first)."""
    blocks: tuple[int, int, int] = (1, 1, 1)
    """Residual blocks after each conv of the pyramids and fusion nets, at H, H/2, H/4 (DCVC-SDD: 1, 1, 1)."""
    block_type: BlockType = "conv"
    offset_groups: PositiveInt = 16
    """Channel groups of offset-diversity alignment, each with its own offsets."""
    offsets: PositiveInt = 2
    """Offsets per group (offset diversity)."""


class ContextualCodec(Strict):
    """Contextual encoder (x_t + contexts → y_t), decoder (ŷ_t + contexts → feature) and reconstruction net."""

    channels: tuple[PositiveInt, PositiveInt, PositiveInt, PositiveInt] = (64, 96, 96, 128)
    """Encoder/decoder widths at H/2, H/4, H/8, H/16 (the H/16 width is used only when blocks[3] > 0)."""
    blocks: tuple[int, int, int, int] = (1, 1, 0, 0)
    """Residual blocks at H/2, H/4, H/8, H/16 in both encoder and decoder (DCVC-SDD: 1, 1, 0, 0)."""
    recon_channels: PositiveInt = 32
    """Width of the decoder output at full resolution."""
    unet_channels: Triple = (32, 64, 128)
    """Widths of the two U-Nets of the reconstruction net at H, H/2, H/4."""
    unet_blocks: PositiveInt = 4
    """Blocks at the bottom of each U-Net."""
    block_type: BlockType = "conv"

    @model_validator(mode="after")
    def _blocks_non_negative(self) -> "ContextualCodec":
        if any(b < 0 for b in self.blocks):
            raise ValueError("contextual_codec.blocks must be non-negative")
        return self


class Intra(Strict):
    """Intra (I-frame) image codec: DCVC-DC's IntraNoAR (hyperprior with residual hyper-decoder, prior fusion cropped
    after it, quadtree spatial prior, Gaussian latent), with the same variable-rate scheme."""

    channels: tuple[PositiveInt, PositiveInt] = (128, 192)
    """Encoder/decoder widths at H/2 and H/4."""
    latent_channels: PositiveInt = 256
    """Channels of the intra latent at H/16 (also the width at H/8 and of the hyper-decoder)."""
    hyper_channels: PositiveInt = 256
    """Channels of the hyper-latent z at H/64."""
    fusion_channels: PositiveInt = 512
    """Hidden width of the prior-fusion net (DCVC-DC: 2 × latent_channels)."""
    prior_channels: PositiveInt = 768
    """Width of the spatial-prior step adaptors and first blocks (DCVC-DC: 3 × latent_channels)."""
    fusion_blocks: int = Field(2, ge=2)
    """Blocks of the prior-fusion net (DCVC-DC: 2)."""
    spatial_blocks: int = Field(3, ge=2)
    """Blocks of the spatial-prior net; the last runs at the output width (DCVC-DC: 3)."""
    blocks: PositiveInt = 1
    """Blocks in each block slot of the encoder and decoder."""
    refine_channels: PositiveInt = 16
    """Width of the decoder output refined by a U-Net into the frame."""
    unet_channels: Triple = (32, 64, 128)
    unet_blocks: PositiveInt = 4
    block_type: BlockType = "conv"


class Reference(Strict):
    """Published parameter counts the preset is built to match (shown by ``nvc1b params``)."""

    source: str
    """Where the figures come from."""
    parts: dict[PartName, float]
    """Parameters per coding part."""
    total: float
    """Parameters of the P-frame model (the six parts)."""
    part_tolerance: float = Field(gt=0)
    """Allowed relative difference per part (0.01 = ±1%)."""
    total_tolerance: float = Field(gt=0)
    """Allowed relative difference of the total."""


class ModelConfig(Strict):
    """A model preset."""

    family: Literal["nvc"] = Field("nvc", exclude=True)
    """Model family (``nvc1b.families``); left out of the dumped preset, so weights fingerprints stay as they were."""
    name: str
    """Preset name, as given to --preset."""
    description: str = ""
    interface: Interface = Interface()
    motion_estimation: MotionEstimation = MotionEstimation()
    motion_codec: MotionCodec = MotionCodec()
    motion_entropy: MotionEntropy = MotionEntropy()
    temporal_context_mining: TemporalContextMining = TemporalContextMining()
    contextual_codec: ContextualCodec = ContextualCodec()
    contextual_entropy: ContextualEntropy = ContextualEntropy()
    intra: Intra = Intra()
    reference: Optional[Reference] = None
    """Published budgets this preset is checked against (optional)."""

    @model_validator(mode="after")
    def _consistent(self) -> "ModelConfig":
        i, t = self.interface, self.temporal_context_mining
        for key, value in (
            ("interface.motion_latent_channels", i.motion_latent_channels),
            ("interface.latent_channels", i.latent_channels),
            ("intra.latent_channels", self.intra.latent_channels),
        ):
            if value % 4:
                raise ValueError(f"key '{key}': {value} is not divisible by 4 (quadtree channel groups)")
        if any(b < 0 for b in t.blocks):
            raise ValueError("key 'temporal_context_mining.blocks': block counts must be non-negative")
        if t.channels[0] % t.offset_groups:
            raise ValueError(
                f"key 'temporal_context_mining.channels': {t.channels[0]} is not divisible by "
                f"offset_groups={t.offset_groups}"
            )
        return self


SECTIONS: tuple[str, ...] = (
    "interface", "motion_estimation", "motion_codec", "motion_entropy", "temporal_context_mining",
    "contextual_codec", "contextual_entropy", "intra",
)
"""Sections every preset file gives: a missing one would silently take the DCVC-SDD-sized default."""


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name_or_path: str | Path) -> Path:
    """The file of a packaged preset name (of any family) or a preset YAML path."""
    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith((".yaml", ".yml")) or path.is_file()):
        path = PRESET_DIR / f"{text}.yaml"
        if not path.is_file():
            raise ConfigError(
                f"unknown preset '{text}': choose one of {', '.join(list_presets())} or give a path to a preset YAML file"
            )
    return path


def load_preset(name_or_path: str | Path) -> ModelConfig:
    """A packaged preset by name (``tiny``, ``sdd-21m``, ``nvc1b``, …) or a preset YAML file by path."""
    path = preset_path(name_or_path)
    data = read_yaml(path)
    data.setdefault("name", path.stem)
    config = validate(ModelConfig, data, str(path))
    missing = [key for key in SECTIONS if key not in data]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ConfigError(
            f"{path}: key '{missing[0]}': missing section{more}; a preset gives every section "
            f"({', '.join(SECTIONS)}), see {PRESET_DIR / 'tiny.yaml'}"
        )
    return config
