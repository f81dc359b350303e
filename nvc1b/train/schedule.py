"""Training schedules as data: global settings plus an ordered list of stages (paper Table II).

``stages/nvc1b_rgb.yaml`` is Table II row by row, preceded by an intra stage; ``stages/demo.yaml`` is the same
structure in miniature. Every problem is a one-line ConfigError naming the file, the stage and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import Field, PositiveFloat, PositiveInt, ValidationError, ValidationInfo, model_validator

from ..config.loading import Strict, format_validation_error, read_yaml
from ..errors import ConfigError

Parts = Literal["Intra", "Inter", "Recon", "All", "Transforms", "Transformers"]
"""Stage types of every family: nvc (Intra, Inter, Recon, All) and vct (Transforms, Transformers, All)."""
Loss = Literal["intra", "meD", "meRD", "recD", "recRD", "all", "all_T", "rd", "rate"]
Precision = Literal["auto", "fp32", "bf16"]
Decay = Literal["constant", "cosine", "linear"]
Updates = Literal["per_frame", "per_clip"]
Beta = Annotated[float, Field(ge=0, lt=1)]

LOSSES_FOR_PARTS: dict[str, tuple[str, ...]] = {
    "Intra": ("intra",),
    "Inter": ("meD", "meRD"),
    "Recon": ("recD", "recRD"),
    "All": ("all", "all_T"),
}
"""Which losses make sense for which trainable set (paper Section IV-D)."""


class ActivationCheckpointing(Strict):
    """Forward recomputation in backward, trading compute for memory (the paper's FRB)."""

    frames: Union[bool, Literal["auto"]] = "auto"
    """Recompute each coded frame's activations (per-frame checkpointing of the cascade); auto = on for a stage
    only when the memory model says its clips do not fit the GPU without it (off on a CPU)."""
    blocks: bool = False
    """Recompute each block of every block stack."""


class Stability(Strict):
    """Automatic handling of bad steps: skip, then roll back."""

    spikes: bool = True
    """Skip steps whose loss spikes. The step's loss is its mean over all ranks and micro-batches (the same on
    every rank); a non-finite loss or gradient norm always skips the step."""
    spike_factor: PositiveFloat = 10.0
    """A spike exceeds this multiple of the median step loss of the window (and the spike_mads bound)."""
    spike_mads: PositiveFloat = 20.0
    """A spike exceeds the window's median by this many robust deviations (1.4826 × median absolute deviation)."""
    window: PositiveInt = 50
    """Number of recent applied steps the median and deviation are taken over (spikes are detected once it is full)."""
    max_bad_steps: PositiveInt = 5
    """After this many consecutive skipped steps, roll back to the last good checkpoint."""
    rollback_lr_factor: float = Field(0.5, gt=0, le=1)
    """Learning-rate multiplier applied at each rollback."""
    max_rollbacks: PositiveInt = 3
    """Give up (with an error) after this many rollbacks in one stage."""


class Overrides(Strict):
    """Global settings a stage may change for itself."""

    crop: Optional[PositiveInt] = None
    global_batch: Optional[PositiveInt] = None
    micro_batch: Optional[PositiveInt] = None
    zero_stage: Optional[Literal[1, 2, 3]] = None
    grad_clip: Optional[PositiveFloat] = None
    precision: Optional[Precision] = None
    activation_checkpointing: Optional[ActivationCheckpointing] = None
    updates: Optional[Updates] = None


class Stage(Strict):
    """One row of the schedule."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    """Unique stage name (letters, digits, '_', '.', '-'), used in run directories and --stage."""
    frames: int = Field(ge=1, le=7)
    """Frames per training clip: 1 for the intra stage, else the I-frame plus frames-1 P-frames."""
    parts: Parts
    """Trainable set. nvc: Intra (I-frame coder), Inter (motion parts), Recon (TCM + contextual parts), All (six
    parts); vct: Transforms (E, D, hyperprior), Transformers (T_sep, T_joint, T_cur), All."""
    loss: Loss
    """nvc: meD, meRD, recD, recRD, all (per frame, references detached), all_T (cascaded); vct: rd (r + λd), rate."""
    lr: PositiveFloat
    """Learning rate (AdamW): the peak, reached after the warm-up."""
    warmup_steps: int = Field(0, ge=0)
    """Linear learning-rate warm-up over the stage's first N optimizer steps (step k of N uses lr·k/N)."""
    decay: Decay = "constant"
    """Learning rate after the warm-up: constant, or decayed (half-cosine or linear) to lr·decay_to at the end."""
    decay_to: float = Field(0.1, ge=0, le=1)
    """Final learning rate of a decaying stage, as a fraction of lr."""
    epochs: Optional[PositiveFloat] = None
    """Length in epochs over the training clips (exactly one of epochs and steps)."""
    steps: Optional[PositiveInt] = None
    """Length in optimizer steps."""
    weights: Optional[str] = None
    """Intra stage only: load the intra coder from this local file instead of training it."""
    overrides: Overrides = Overrides()

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> "Stage":
        if (self.epochs is None) == (self.steps is None) and self.weights is None:
            raise ValueError("give exactly one of 'epochs' and 'steps'")
        from ..families import get_family  # the preset's family decides which stage types exist

        get_family((info.context or {}).get("family", "nvc")).check_stage(self)
        if self.steps is not None and self.warmup_steps >= self.steps:
            raise ValueError(f"warmup_steps {self.warmup_steps} leaves none of the stage's {self.steps} steps")
        return self


class DataSource(Strict):
    """Where training clips come from."""

    train: str = "builtin"
    """A shard manifest (or its directory), or 'builtin' for the synthetic set (built on first use, cached)."""
    workers: int = Field(2, ge=0)
    """Data-loader worker processes per rank."""
    permute_colours: bool = False
    """Give each training clip a random order of its R, G, B channels (seeded per step, the same for all its
    frames): a colour augmentation for small or colour-poor sets (the built-in photos are half greyscale and
    mostly warm), so a model learns to code colour rather than the set's palette."""


class Schedule(Strict):
    """A whole training run: settings shared by all stages, then the stages in order."""

    preset: str
    """Model preset name or path (see `nvc1b params`)."""
    data: DataSource = DataSource()
    lambdas: tuple[PositiveFloat, PositiveFloat, PositiveFloat, PositiveFloat] = (85.0, 170.0, 380.0, 840.0)
    """λ of the four rate anchors; each sample draws one anchor per step."""
    frame_weights: tuple[PositiveFloat, ...] = Field((0.5, 1.2, 0.5, 0.9), min_length=1)
    """w_t of the P-frame at GOP position t: frame_weights[t % len]."""
    crop: PositiveInt = 256
    """Square random crop of the training clips."""
    global_batch: PositiveInt = 32
    """Clips per optimizer step over all ranks (reached by gradient accumulation)."""
    micro_batch: PositiveInt = 8
    """Clips per rank per forward/backward."""
    seed: int = 0
    precision: Precision = "auto"
    """auto = bf16 autocast on GPU, fp32 on CPU."""
    zero_stage: Literal[1, 2, 3] = 2
    """DeepSpeed ZeRO stage."""
    grad_clip: PositiveFloat = 0.2
    """Global gradient-norm clip (DCVC-UF's 0.2); a non-finite norm skips the step."""
    weight_decay: float = Field(0.01, ge=0)
    """AdamW weight decay (decoupled); 0.01 = torch.optim.AdamW's default, which the reference trainers keep."""
    adam_betas: tuple[Beta, Beta] = (0.9, 0.999)
    """AdamW (β1, β2); torch.optim.AdamW's defaults, as in the reference trainers."""
    carry_moments: bool = True
    """Carry the AdamW moments into the next stage when it trains the same parameters (else they restart)."""
    updates: Updates = "per_frame"
    """Optimizer steps of the non-cascaded multi-frame losses: per_frame = one per P-frame with the reference
    detached (DCVC-UF's released trainer), per_clip = one per clip on the mean loss; all_T is always per clip."""
    checkpoint_every: PositiveInt = 500
    """Optimizer steps between checkpoints (one is always written at the end of a stage)."""
    keep_checkpoints: PositiveInt = 3
    """Checkpoints kept per run (older ones are deleted once a newer one is complete)."""
    activation_checkpointing: ActivationCheckpointing = ActivationCheckpointing()
    stability: Stability = Stability()
    progress_every: PositiveInt = 10
    """Optimizer steps between progress lines in the log when stderr is not a terminal (a SLURM job's output)."""
    progress_seconds: PositiveFloat = 60.0
    """Seconds between those progress lines at the latest."""
    spynet_weights: Optional[str] = None
    """Local file with pre-trained SpyNet weights, loaded before the first stage."""
    init_weights: Optional[str] = None
    """An nvc1b export the first stage starts from instead of a seeded fresh model (e.g. DCVC-SDD's released weights
    from ``nvc1b import dcvc-sdd``, to fine-tune); its architecture must be the preset's."""
    init: Literal["default", "zero-residual", "pass-through"] = "default"
    """Initialisation of a fresh model (not of ``init_weights``): default = PyTorch's per layer; zero-residual = also
    the last layer of every residual branch at zero, so each block starts as its shortcut; pass-through =
    zero-residual with a codec that works from step 0: I-frames as their 16×16 block means in colour, P-frames as
    their reference with their block means set to the frame's (see nvc1b.model.pass_through)."""
    colorspace: Literal["rgb", "yuv"] = "rgb"
    """What the model codes: rgb (RGB MSE), or yuv (BT.709 4:2:0 as nearest 4:4:4, (6·Y + U + V)/8-weighted MSE)."""
    stages: list[Stage] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> "Schedule":
        seen: set[str] = set()
        for i, stage in enumerate(self.stages):
            if stage.name in seen:
                raise ValueError(f"stage {i} ('{stage.name}'): the name is used by an earlier stage")
            seen.add(stage.name)
        return self

    def index(self, stage: Union[str, int]) -> int:
        """Index of a stage given by name or by index (as text or int)."""
        names = [s.name for s in self.stages]
        if isinstance(stage, int) or str(stage).lstrip("-").isdigit():
            i = int(stage)
            if not 0 <= i < len(names):
                raise ConfigError(f"stage index {i} is out of range: the schedule has stages 0..{len(names) - 1}")
            return i
        if stage not in names:
            raise ConfigError(f"unknown stage '{stage}': stages are {', '.join(names)}")
        return names.index(stage)


def load_schedule(path: str | Path) -> Schedule:
    """Read and validate a schedule file."""
    data = read_yaml(path)
    try:
        return Schedule.model_validate(data, context={"family": _preset_family(data, path)})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path), data, "stages", "stage")) from None


def _preset_family(data: dict, path: str | Path) -> str:
    """The family of the schedule's preset (nvc when the preset is missing or unreadable: validation says why)."""
    from ..families import preset_family

    preset = data.get("preset")
    if not isinstance(preset, str):
        return "nvc"
    try:
        return preset_family(preset).name
    except ConfigError:
        return "nvc"


def family_of_schedule(schedule: Schedule) -> str:
    """The family of a validated schedule's preset."""
    from ..families import preset_family

    return preset_family(schedule.preset).name


def effective(schedule: Schedule, stage: Stage) -> Schedule:
    """The global settings with the stage's overrides applied."""
    changes = {k: v for k, v in stage.overrides.model_dump(exclude_none=True).items()}
    if "activation_checkpointing" in changes:
        changes["activation_checkpointing"] = stage.overrides.activation_checkpointing
    return schedule.model_copy(update=changes)
