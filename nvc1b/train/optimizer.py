"""AdamW as a stage uses it: the schedule's betas and decoupled weight decay, the stage's learning-rate curve
(warm-up, then constant or decaying), and the moments carried across a stage hand-off when the next stage trains
exactly the same parameters (consecutive All stages, Inter meD → meRD), restarted otherwise."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from torch import nn

from .checkpointing import read_latest
from .schedule import Schedule, Stage

log = logging.getLogger("nvc1b.train")


def build_optimizer(trainable: list[nn.Parameter], lr: float, cfg: Schedule) -> torch.optim.AdamW:
    """AdamW over the stage's trainable parameters with the schedule's betas and weight decay."""
    return torch.optim.AdamW(trainable, lr=lr, betas=cfg.adam_betas, weight_decay=cfg.weight_decay)


def set_hyperparameters(optimizer: torch.optim.Optimizer, lr: float, cfg: Schedule) -> None:
    """The stage's lr, betas and weight decay in every group (a loaded state carries the previous stage's)."""
    for group in optimizer.param_groups:
        group.update(lr=lr, betas=tuple(cfg.adam_betas), weight_decay=cfg.weight_decay)


def lr_multiplier(stage: Stage, step: int, total: int) -> float:
    """Factor of ``stage.lr`` for optimizer step ``step`` (0-based) of ``total``: a linear warm-up over
    ``warmup_steps``, then constant, or a half-cosine or linear decay to ``decay_to`` at the last step."""
    if step < stage.warmup_steps:
        return (step + 1) / stage.warmup_steps
    if stage.decay == "constant":
        return 1.0
    span = total - stage.warmup_steps - 1
    done = min(1.0, (step - stage.warmup_steps) / span) if span > 0 else 1.0
    shape = 0.5 * (1 + math.cos(math.pi * done)) if stage.decay == "cosine" else 1 - done
    return stage.decay_to + (1 - stage.decay_to) * shape


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """This step's learning rate in every group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def moments_source(schedule: Schedule, index: int, run_dir: Path, world_size: int) -> str | None:
    """The previous stage's final checkpoint to take AdamW's moments from, or None (reset); logs which and why."""
    stage = schedule.stages[index]
    where = f"stage {index} ('{stage.name}')"
    if index == 0:
        return None
    prev = schedule.stages[index - 1]
    reason = None
    if not schedule.carry_moments:
        reason = "carry_moments is false"
    elif prev.parts != stage.parts or prev.weights is not None:  # each stage type of a family has its own set
        reason = f"the trainable set changes from {prev.parts} to {stage.parts}"
    latest = read_latest(run_dir) if reason is None else None
    if reason is None:
        if latest is None or latest[1].stage != index - 1 or not latest[1].stage_done:
            reason = f"stage {index - 1} ('{prev.name}') has no final checkpoint in {run_dir}"
        elif latest[1].world_size != world_size:
            reason = f"stage {index - 1} ran on {latest[1].world_size} ranks, this one on {world_size}"
    if reason is not None:
        log.info("%s: AdamW moments reset (%s)", where, reason)
        return None
    log.info("%s: AdamW moments carried from stage %d ('%s'), which trained the same parameters (checkpoint %s)",
             where, index - 1, prev.name, latest[0])
    return latest[0]
