"""VCT presets: the knobs of the per-frame transforms, the stage-I hyperprior and the transformer entropy model
(Mentzer et al. 2022, Section 3.3), as validated data. A preset file says ``family: vct``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from ...config.loading import Strict

VctPart = Literal["encoder", "decoder", "hyperprior", "entropy_model", "lrp"]
VCT_PARTS: tuple[str, ...] = VctPart.__args__  # type: ignore[attr-defined]


class Transforms(Strict):
    """Per-frame image encoder E (4 strided convolutions, 16× down) and decoder D (transposed convolutions with
    residual blocks at the low resolutions)."""

    channels: PositiveInt = 192
    """d_ED: filters of every layer of E and D."""
    latent_channels: PositiveInt = 192
    """d_C: channels of the latent y_i, i.e. symbols per token."""
    decoder_blocks: tuple[int, int] = (2, 2)
    """Residual blocks of D at H/16 and at H/8."""


class Hyperprior(Strict):
    """The mean-scale hyperprior that gives the rate of stage I (discarded afterwards)."""

    channels: PositiveInt = 192
    """Width of the hyper-encoder and hyper-decoder."""
    hyper_channels: PositiveInt = 192
    """Channels of the hyper-latent z (factorized prior)."""


class EntropyModel(Strict):
    """The transformer entropy model: T_sep per previous block, T_joint over both, T_cur within the current block."""

    d_model: PositiveInt = 768
    """d_T: width of the transformers."""
    heads: PositiveInt = 16
    """Attention heads of every layer."""
    sep_layers: PositiveInt = 6
    """Layers of T_sep (the paper: 6; the released code: 3)."""
    joint_layers: PositiveInt = 4
    """Layers of T_joint (the paper: 4; the released code: 2)."""
    cur_layers: PositiveInt = 5
    """Masked conditional layers of T_cur."""
    mlp_expansion: PositiveInt = 4
    """MLP width of each layer, as a multiple of d_T."""
    current_block: PositiveInt = 4
    """w_c: side of the non-overlapping blocks of the current latent (w_c² tokens, T_cur runs w_c² times)."""
    previous_block: PositiveInt = 8
    """w_p: side of the overlapping blocks of each previous latent (stride w_c)."""
    context_frames: Literal[1, 2] = 2
    """Previous latents the model conditions on."""

    @model_validator(mode="after")
    def _consistent(self) -> EntropyModel:
        if self.d_model % self.heads:
            raise ValueError(f"key 'd_model': {self.d_model} is not divisible by heads={self.heads}")
        if self.previous_block < self.current_block or (self.previous_block - self.current_block) % 2:
            raise ValueError(
                f"key 'previous_block': {self.previous_block} must be ≥ current_block={self.current_block} and "
                "exceed it by an even number (the previous block is centred on the current one)"
            )
        return self


class VctReference(Strict):
    """Published sizes, where the paper gives them (shown by ``nvc1b params``)."""

    source: str
    notes: str = ""


class VctConfig(Strict):
    """A VCT preset."""

    family: Literal["vct"] = "vct"
    """Model family (see ``nvc1b.families``)."""
    name: str
    """Preset name, as given to --preset."""
    description: str = ""
    transforms: Transforms = Transforms()
    hyperprior: Hyperprior = Hyperprior()
    entropy_model: EntropyModel = EntropyModel()
    lrp: bool = True
    """Latent residual prediction: D decodes y' = ŷ + f_LRP(z_cur) (the paper enables it in stage III)."""
    latent_scale: float = Field(35.0, gt=0)
    """Latents are divided by this before the token embeddings (the released code's normalisation)."""
    reference: VctReference | None = None


SECTIONS: tuple[str, ...] = ("transforms", "hyperprior", "entropy_model")
"""Sections every VCT preset file gives."""
