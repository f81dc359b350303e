"""Memory per GPU of one training step: model states by ZeRO stage (counted) plus activations (measured).

Model states are parameter counts times bytes: fp32 weights, fp32 gradients, DeepSpeed's fp32 copy of the
optimizer partition and AdamW's two moments, partitioned over ranks as the ZeRO stage says, plus the buffers
DeepSpeed allocates at its default sizes. Activations are measured, not guessed: a short cascade of the real
training clip (``ClipLoss``: I-frame, then P-frames with the stage's loss) runs forward and backward on the meta
device while every storage created is counted until it is freed (``LiveMemory``), with the GPU's autocast and
fused attention emulated (``GpuEmulation``). Growth per P-frame is read off the cascade, so any length T follows.

Assumed, not measured: each term is linear in the micro-batch (fitted through two measured micro-batches, or
scaled from one), gradients leave ``.grad`` as they are produced (ZeRO's reduce hooks), all six P-frame parts
are trained (the most a stage trains), and a GPU can hand out ``USABLE_FRACTION`` of its memory to tensors (the
rest: CUDA context, cuDNN workspaces, allocator fragmentation). Kernel workspaces are not counted.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Literal

import torch

from ..config.model import ModelConfig
from ..errors import ConfigError
from ..model.codec import VideoCodec
from ..model.counting import ParameterCount, count_parameters
from ..model.quantization import LAMBDAS
from .cache import load_entry, store_entry
from .emulation import GpuEmulation, backward_under
from .tracking import LiveMemory

log = logging.getLogger(__name__)

GIB = 2**30
FP32 = 4
Precision = Literal["fp32", "bf16"]
USABLE_FRACTION = 0.92
"""Share of a GPU's memory that tensors can use (the rest: CUDA context, cuDNN workspaces, fragmentation)."""
FRAME_WEIGHTS = (0.5, 1.2, 0.5, 0.9)


@dataclass(frozen=True)
class DeepSpeedBuffers:
    """DeepSpeed defaults that allocate memory beside the model states (the engine's config leaves them as is)."""

    reduce_bucket_elements: int = 500_000_000
    """``reduce_bucket_size``: ZeRO-1/2 stage gradients in a contiguous fp32 bucket of this many elements."""
    stage3_max_live_parameters: int = 1_000_000_000
    """ZeRO-3 gathers at most this many parameters at a time (fp32 here: no DeepSpeed bf16 mode)."""


@dataclass(frozen=True)
class ModelStates:
    """Bytes of model state one rank holds."""

    weights: int
    """fp32 parameters (all of them, frozen ones too; partitioned under ZeRO-3)."""
    gradients: int
    """fp32 gradients of the trainable parameters (partitioned from ZeRO-2 on)."""
    master: int
    """DeepSpeed's fp32 copy of this rank's optimizer partition."""
    optimizer: int
    """AdamW's exp_avg and exp_avg_sq of this rank's partition."""
    buffers: int
    """Reduce bucket (ZeRO-1/2) or gathered parameters and reduce bucket (ZeRO-3)."""

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.master + self.optimizer + self.buffers


def _share(n: int, world_size: int) -> int:
    return -(-n // world_size)


def model_state_bytes(
    params: int, trainable: int, zero_stage: int, world_size: int, buffers: DeepSpeedBuffers = DeepSpeedBuffers(),
) -> ModelStates:
    """Model states per rank for ``params`` parameters of which ``trainable`` are optimized."""
    if zero_stage not in (0, 1, 2, 3) or world_size < 1:
        raise ConfigError(f"ZeRO stage {zero_stage} on {world_size} ranks: stage must be 0..3 and ranks >= 1")
    weights = FP32 * (_share(params, world_size) if zero_stage == 3 else params)
    gradients = FP32 * (_share(trainable, world_size) if zero_stage >= 2 else trainable)
    master = FP32 * _share(trainable, world_size) if zero_stage >= 1 else 0
    optimizer = 2 * FP32 * (_share(trainable, world_size) if zero_stage >= 1 else trainable)
    extra = 0
    if zero_stage in (1, 2):
        extra = FP32 * buffers.reduce_bucket_elements
    elif zero_stage == 3:
        extra = FP32 * (min(buffers.stage3_max_live_parameters, params) + buffers.reduce_bucket_elements)
    return ModelStates(weights, gradients, master, optimizer, extra)


@dataclass(frozen=True)
class ClipMeasurement:
    """Live bytes during one training clip at one micro-batch, measured on the meta device."""

    frame_starts: tuple[int, ...]
    """Live bytes as each P-frame starts (inputs and parameters excluded)."""
    copy_starts: tuple[int, ...]
    """Bytes of cached bf16 weight casts as each P-frame starts."""
    forward_end: int
    """Live bytes when the forward has returned the loss (weight casts still cached)."""
    copies: int
    """Bytes of cached bf16 weight casts at the end of the forward (0 in fp32)."""
    peak: int
    """Highest live count in the forward or the backward."""


def _drop_grad(p: torch.Tensor) -> None:
    p.grad = None  # as ZeRO's hooks do once a gradient is in the reduce bucket


def _training_clip(codec: VideoCodec, frames: int, checkpoint: bool, bf16: bool, loss: str = "all_T"):
    """The clip the model measures: all six P-frame parts trained (the intra coder frozen), gradients dropped
    as they arrive."""
    from ..train.clip import ClipLoss, ClipSpec, set_trainable

    for p in set_trainable(codec, "All"):
        p.register_post_accumulate_grad_hook(_drop_grad)
    spec = ClipSpec(parts="All", loss=loss, frames=frames, lambdas=LAMBDAS, frame_weights=FRAME_WEIGHTS,
                    checkpoint_frames=checkpoint, bf16=bf16)
    return ClipLoss(codec, spec)


def require_checkable(device: torch.device, precision: str) -> None:
    """Real clips on a CPU are measured in fp32 only: CPU autocast follows another op policy than CUDA's."""
    if device.type == "cpu" and precision != "fp32":
        raise ConfigError("--check on a CPU measures fp32 only (CPU autocast is not CUDA's): add --precision fp32")


def measure_clip(
    config: ModelConfig, frames: int, crop: int = 256, precision: Precision = "bf16", checkpoint: bool = False,
    micro_batch: int = 1, loss: str = "all_T",
) -> ClipMeasurement:
    """Run one training clip (all six P-frame parts trained, the intra coder frozen) forward and backward on the
    meta device and count every storage it creates until it is freed."""
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"precision '{precision}': choose fp32 or bf16")
    if crop % 16 or crop <= 0:
        raise ConfigError(f"crop {crop} is not a positive multiple of 16")
    with torch.device("meta"):
        codec = VideoCodec(config)
    model = _training_clip(codec, frames, checkpoint, bf16=False, loss=loss)  # bf16 is emulated below
    live = LiveMemory()
    gpu = GpuEmulation(torch.bfloat16 if precision == "bf16" else None)
    starts: list[int] = []
    copy_starts: list[int] = []
    step = codec.inter_step

    def marked_step(*args, **kwargs):
        starts.append(live.current)
        copy_starts.append(gpu.cached_bytes)
        return step(*args, **kwargs)

    codec.inter_step = marked_step  # this instance only
    clip = torch.empty(micro_batch, frames, 3, crop, crop, device="meta")
    q_index = torch.zeros(micro_batch, device="meta")
    with live:
        with gpu:
            loss_value, _ = model(clip, q_index)
        end, copies = live.current, gpu.cached_bytes
        gpu.caching = False  # autocast's region ends with the forward; recomputation casts afresh
        gpu.clear_cache()
        backward_under(gpu, loss_value)
    return ClipMeasurement(tuple(starts), tuple(copy_starts), end, copies, live.peak)


def measure_clip_on_device(
    config: ModelConfig, frames: int, crop: int, precision: Precision, checkpoint: bool, micro_batch: int,
    device: torch.device, seed: int = 0,
) -> int | None:
    """Peak activation bytes of one real training clip on ``device``: what ``ActivationProfile.activation_bytes``
    predicts, measured. The same clip as ``measure_clip`` (all six P-frame parts trained, gradients dropped as
    they arrive) with real kernels and real data. On a GPU: the CUDA allocator's peak above what was allocated
    before (weights and the input clip), under real bf16 autocast; None if the clip runs out of memory. On the
    CPU: the storages the step creates, counted until freed (``LiveMemory``), fp32 only (CPU autocast follows
    another op policy than the CUDA one the model predicts)."""
    require_checkable(device, precision)
    torch.manual_seed(seed)
    codec = VideoCodec(config).to(device)
    model = _training_clip(codec, frames, checkpoint, bf16=precision == "bf16")
    clip = torch.rand(micro_batch, frames, 3, crop, crop, generator=torch.Generator().manual_seed(seed)).to(device)
    q_index = torch.arange(micro_batch, device=device).float() % len(LAMBDAS)
    try:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.empty_cache()
            before = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            try:
                model(clip, q_index)[0].backward()
                torch.cuda.synchronize(device)
            except torch.cuda.OutOfMemoryError:
                return None
            return torch.cuda.max_memory_allocated(device) - before
        with LiveMemory() as live:
            model(clip, q_index)[0].backward()
        return live.peak
    finally:
        del model, codec, clip
        if device.type == "cuda":
            torch.cuda.empty_cache()


@dataclass(frozen=True)
class Linear:
    """Bytes that grow linearly with the micro-batch: ``base + per_sample × micro_batch``."""

    base: float
    per_sample: float

    def at(self, micro_batch: int) -> int:
        return round(self.base + self.per_sample * micro_batch)

    @classmethod
    def fit(cls, points: list[tuple[int, int]]) -> Linear:
        """Through two (micro-batch, bytes) points; through the origin from one."""
        if len(points) == 1:
            (b, v), = points
            return cls(0.0, v / b)
        (b1, v1), (b2, v2) = points[:2]
        slope = (v2 - v1) / (b2 - b1)
        return cls(v1 - slope * b1, slope)


@dataclass(frozen=True)
class ActivationProfile:
    """Activation memory of a training clip, read off measured 4-frame clips (I + 3 P-frames): each term is
    linear in the micro-batch (fitted through two measured micro-batches, or scaled from one)."""

    crop: int
    precision: str
    checkpoint: bool
    """Per-frame activation checkpointing (each P-frame recomputed in backward)."""
    micro_batches: tuple[int, ...]
    """The micro-batches that were measured."""
    fixed: Linear
    """Live when the first P-frame starts: what the I-frame leaves (its reference state)."""
    first_frame: Linear
    """Growth over the first P-frame (no long-term reference or latent prior yet)."""
    frame: Linear
    """Growth over each later P-frame: what autograd (or the checkpoint) keeps of it, and its loss terms."""
    last_frame: Linear
    """How much the last P-frame's growth differs from a middle one's (its state is not kept for a next frame)."""
    transient: Linear
    """Highest count above the end of the forward, in the forward or the backward (recomputation, gradients)."""
    weight_copies: int
    """bf16 casts of the weights that autocast caches for one forward (0 in fp32); independent of clip and batch."""
    two_frames: Linear | None = None
    """Measured peak of a 2-frame clip, when checkpointing: its only recomputed frame is a first P-frame, smaller
    than the later ones the per-frame terms describe."""

    @classmethod
    def from_clips(cls, clips: dict[int, ClipMeasurement], crop: int, precision: str, checkpoint: bool,
                   two_frame_clips: dict[int, ClipMeasurement] | None = None) -> ActivationProfile:
        terms: dict[str, list[tuple[int, int]]] = {k: [] for k in ("fixed", "first", "frame", "last", "transient")}
        for b, m in sorted(clips.items()):
            (s1, s2, s3), (c1, c2, c3) = m.frame_starts, m.copy_starts
            middle = (s3 - s2) - (c3 - c2)
            terms["fixed"].append((b, s1))
            terms["first"].append((b, (s2 - s1) - (c2 - c1)))
            terms["frame"].append((b, middle))
            terms["last"].append((b, (m.forward_end - s3) - (m.copies - c3) - middle))
            terms["transient"].append((b, m.peak - m.forward_end))
        fit = {k: Linear.fit(v) for k, v in terms.items()}
        return cls(crop=crop, precision=precision, checkpoint=checkpoint, micro_batches=tuple(sorted(clips)),
                   fixed=fit["fixed"], first_frame=fit["first"], frame=fit["frame"], last_frame=fit["last"],
                   transient=fit["transient"], weight_copies=max(m.copies for m in clips.values()),
                   two_frames=Linear.fit([(b, m.peak) for b, m in sorted(two_frame_clips.items())])
                   if two_frame_clips else None)

    def activation_bytes(self, frames: int, micro_batch: int = 1) -> int:
        """Peak bytes of activations (everything but the input clip) of clips of ``frames`` frames."""
        if frames < 2:
            raise ValueError("a training clip with P-frames has at least 2 frames")
        b = micro_batch
        if frames == 2 and self.two_frames is not None:
            return self.two_frames.at(b)
        return (self.fixed.at(b) + self.first_frame.at(b) + (frames - 2) * self.frame.at(b) + self.last_frame.at(b)
                + self.transient.at(b) + self.weight_copies)

    def clip_bytes(self, frames: int, micro_batch: int = 1) -> int:
        """Peak bytes of a training clip: activations plus the fp32 input clip itself."""
        return self.activation_bytes(frames, micro_batch) + micro_batch * FP32 * 3 * self.crop**2 * frames

    def as_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "ActivationProfile":
        linear = {k: Linear(**v) for k, v in data.items() if isinstance(v, dict)}
        return cls(**{**data, **linear, "micro_batches": tuple(data["micro_batches"])})


def measure_activations(
    config: ModelConfig, crop: int = 256, precision: Precision = "bf16", checkpoint: bool = False,
    micro_batches: tuple[int, ...] = (1,), two_frame_clips: bool = True,
) -> ActivationProfile:
    """The activation profile of ``config`` from 4-frame clips measured on the meta device at each micro-batch
    given (two make the micro-batch dependence exact, one scales it); with checkpointing, 2-frame clips too
    (unless ``two_frame_clips`` is off: clips of 2 frames are then over-estimated)."""
    if not 1 <= len(micro_batches) <= 2 or len(set(micro_batches)) != len(micro_batches):
        raise ValueError("measure at one micro-batch or at two different ones")
    clips = {b: measure_clip(config, 4, crop, precision, checkpoint, b) for b in micro_batches}
    short = None
    if checkpoint and two_frame_clips:
        short = {b: measure_clip(config, 2, crop, precision, checkpoint, b) for b in micro_batches}
    return ActivationProfile.from_clips(clips, crop, precision, checkpoint, short)


_PROFILES: dict[str, ActivationProfile] = {}


def activation_profile(
    config: ModelConfig, crop: int, precision: Precision, checkpoint: bool, micro_batches: tuple[int, ...] = (1,),
    two_frame_clips: bool = True,
) -> ActivationProfile:
    """``measure_activations``, remembered for the life of the process and on disk (``nvc1b.perf.cache``)."""
    key = json.dumps([config.model_dump(mode="json", exclude={"name", "description", "reference"}), crop,
                      precision, checkpoint, list(micro_batches), two_frame_clips], sort_keys=True)
    if key not in _PROFILES:
        stored = load_entry(key)
        if stored is not None:
            _PROFILES[key] = ActivationProfile.from_json(stored)
        else:
            _PROFILES[key] = measure_activations(config, crop, precision, checkpoint, micro_batches, two_frame_clips)
            store_entry(key, _PROFILES[key].as_json())
    return _PROFILES[key]


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak bytes one rank needs for one training step."""

    states: ModelStates
    activations: int
    frames: int
    micro_batch: int
    crop: int
    precision: str
    checkpoint: bool
    zero_stage: int
    world_size: int

    @property
    def total(self) -> int:
        return self.states.total + self.activations

    def fits(self, gpu_memory_gb: float, usable: float = USABLE_FRACTION) -> bool:
        return self.total <= usable * gpu_memory_gb * GIB

    def as_json(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "states"}, "states": asdict(self.states),
                "states_total": self.states.total, "total": self.total}


def estimate_memory(
    count: ParameterCount, profile: ActivationProfile, frames: int, micro_batch: int, zero_stage: int,
    world_size: int, buffers: DeepSpeedBuffers = DeepSpeedBuffers(),
) -> MemoryEstimate:
    """Memory per rank of a stage training all six P-frame parts (the intra coder frozen) on clips of ``frames``."""
    states = model_state_bytes(count.total + count.intra, count.total, zero_stage, world_size, buffers)
    return MemoryEstimate(
        states=states, activations=profile.clip_bytes(frames, micro_batch), frames=frames, micro_batch=micro_batch,
        crop=profile.crop, precision=profile.precision, checkpoint=profile.checkpoint, zero_stage=zero_stage,
        world_size=world_size,
    )


def longest_cascade(
    count: ParameterCount, profile: ActivationProfile, micro_batch: int, zero_stage: int, world_size: int,
    gpu_memory_gb: float, max_frames: int = 256,
) -> int:
    """The most frames per clip that fit in ``gpu_memory_gb`` (0 if not even 2 do), up to ``max_frames``."""
    best = 0
    for frames in range(2, max_frames + 1):
        if not estimate_memory(count, profile, frames, micro_batch, zero_stage, world_size).fits(gpu_memory_gb):
            break
        best = frames
    return best


def largest_micro_batch(
    count: ParameterCount, profile: ActivationProfile, frames: int, zero_stage: int, world_size: int,
    gpu_memory_gb: float, max_batch: int = 256,
) -> int:
    """The largest micro-batch whose clips of ``frames`` frames fit (0 if micro-batch 1 does not)."""
    best = 0
    for batch in range(1, max_batch + 1):
        if not estimate_memory(count, profile, frames, batch, zero_stage, world_size).fits(gpu_memory_gb):
            break
        best = batch
    return best


def config_memory(
    config: ModelConfig, frames: int, micro_batch: int, crop: int, precision: Precision, checkpoint: bool,
    zero_stage: int, world_size: int,
) -> MemoryEstimate:
    """Count, measure (cached) and combine: the memory per rank of training ``config``."""
    profile = activation_profile(config, crop, precision, checkpoint, (micro_batch,))
    return estimate_memory(count_parameters(config), profile, frames, micro_batch, zero_stage, world_size)
