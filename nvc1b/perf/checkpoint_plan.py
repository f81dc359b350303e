"""Per-frame activation checkpointing ``auto``: on for a stage only when the memory model says its clips do not
fit one GPU without it (checkpointing costs about a third more FLOPs per step and saves nothing when they fit).

The memory model (``nvc1b.perf.memory``) counts a stage as if it trained all six P-frame parts, so for Inter and
Recon stages the decision errs on the side of checkpointing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from ..cluster.profile import ClusterProfile
from ..config.model import ModelConfig, load_preset
from ..train.schedule import Schedule, Stage, effective
from .memory import GIB, USABLE_FRACTION, config_memory


@dataclass(frozen=True)
class CheckpointChoice:
    """Whether a stage recomputes each frame's activations in backward, and why."""

    on: bool
    reason: str

    def describe(self) -> str:
        return f"per-frame checkpointing {'on' if self.on else 'off'} ({self.reason})"


def choose_frames_checkpointing(
    config: ModelConfig, frames: int, micro_batch: int, crop: int, precision: str, zero_stage: int, world_size: int,
    gpu_memory_gb: float,
) -> CheckpointChoice:
    """``auto`` for one stage: off when a clip of ``frames`` frames fits the GPU without checkpointing."""
    if frames < 3:  # one P-frame: nothing is kept across frames, so per-frame checkpointing cannot save memory
        return CheckpointChoice(False, f"auto: T={frames} has one P-frame, checkpointing it saves nothing")
    if gpu_memory_gb <= 0:
        return CheckpointChoice(False, "auto: no GPU memory to plan for")
    estimate = config_memory(config, frames, micro_batch, crop, "bf16" if precision == "auto" else precision, False,
                             zero_stage, world_size)
    need, usable = estimate.total / GIB, USABLE_FRACTION * gpu_memory_gb
    verdict = "fits" if estimate.fits(gpu_memory_gb) else "does not fit"
    return CheckpointChoice(
        not estimate.fits(gpu_memory_gb),
        f"auto: the memory model puts T={frames} micro-batch {micro_batch} without it at {need:.1f} GiB per GPU, "
        f"which {verdict} the {usable:.1f} usable of {gpu_memory_gb:g} GiB",
    )


def stage_frames_checkpointing(
    schedule: Schedule, stage: Stage, config: ModelConfig, device: torch.device, world_size: int,
) -> CheckpointChoice:
    """The choice for a stage about to train on ``device``: the schedule's true/false, or ``auto`` against the
    memory of this GPU (off on a CPU, which has no device memory to plan for)."""
    cfg = effective(schedule, stage)
    setting = cfg.activation_checkpointing.frames
    if setting != "auto":
        return CheckpointChoice(bool(setting), "set in the schedule")
    if device.type != "cuda":
        return CheckpointChoice(False, "auto: CPU run, no GPU memory to plan for")
    gpu_gb = torch.cuda.get_device_properties(device).total_memory / GIB
    precision = "bf16" if cfg.precision == "auto" else cfg.precision
    return choose_frames_checkpointing(config, stage.frames, cfg.micro_batch, cfg.crop, precision, cfg.zero_stage,
                                       world_size, gpu_gb)


def plan_frames_checkpointing(schedule: Schedule, profile: "ClusterProfile") -> dict[str, CheckpointChoice]:
    """The choice for every training stage of ``schedule`` on ``profile`` (its micro-batch and ZeRO stage win)."""
    config = load_preset(schedule.preset)
    changes = {k: getattr(profile, k) for k in ("micro_batch", "zero_stage") if getattr(profile, k) is not None}
    resolved = schedule.model_copy(update=changes)
    plan = {}
    for stage in resolved.stages:
        if stage.weights is not None or stage.parts == "Intra":
            continue
        cfg = effective(resolved, stage)
        setting = cfg.activation_checkpointing.frames
        if setting != "auto":
            plan[stage.name] = CheckpointChoice(bool(setting), "set in the schedule")
            continue
        precision = "bf16" if cfg.precision == "auto" else cfg.precision
        plan[stage.name] = choose_frames_checkpointing(config, stage.frames, cfg.micro_batch, cfg.crop, precision,
                                                       cfg.zero_stage, profile.world_size, profile.gpu_memory_gb)
    return plan
