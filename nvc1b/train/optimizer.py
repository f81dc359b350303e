"""AdamW as a stage uses it: the schedule's betas and decoupled weight decay, and the moments carried across a
stage hand-off when the next stage trains exactly the same parameters (consecutive All stages, Inter meD → meRD),
restarted otherwise."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from .checkpointing import read_latest
from .schedule import Schedule

log = logging.getLogger("nvc1b.train")


def build_optimizer(trainable: list[nn.Parameter], lr: float, cfg: Schedule) -> torch.optim.AdamW:
    """AdamW over the stage's trainable parameters with the schedule's betas and weight decay."""
    return torch.optim.AdamW(trainable, lr=lr, betas=cfg.adam_betas, weight_decay=cfg.weight_decay)


def set_hyperparameters(optimizer: torch.optim.Optimizer, lr: float, cfg: Schedule) -> None:
    """The stage's lr, betas and weight decay in every group (a loaded state carries the previous stage's)."""
    for group in optimizer.param_groups:
        group.update(lr=lr, betas=tuple(cfg.adam_betas), weight_decay=cfg.weight_decay)


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
