"""How often a stage steps the optimizer: once per clip, or once per P-frame with the reference detached.

DCVC-UF's released trainer (``train_video.py``) takes one optimizer step per P-frame for the non-cascaded
losses, so a T-frame clip gives T−1 updates; ``updates: per_frame`` (the default) does the same, and
``per_clip`` takes one step on the mean loss of the clip's P-frames. The cascaded L_T^all needs the whole clip's
graph and is always one step per clip. An optimizer step is what ``steps:``, ``checkpoint_every`` and the logs
count; epochs and the data stream count clip-batches (one global batch of clips).
"""

from __future__ import annotations

from torch import Tensor

from .losses import PER_FRAME_LOSSES
from .schedule import Schedule, Stage, effective


def clip_batches_per_epoch(num_clips: int, global_batch: int) -> int:
    """Global batches in an epoch: every clip once, the last ``num_clips mod global_batch`` of its order left out."""
    return max(1, num_clips // global_batch)


def steps_per_clip(stage: Stage, cfg: Schedule) -> int:
    """Optimizer steps one clip-batch gives in ``stage`` (``cfg``: the effective settings of the stage)."""
    if stage.frames > 2 and cfg.updates == "per_frame" and stage.loss in PER_FRAME_LOSSES:
        return stage.frames - 1
    return 1


def frames_per_step(stage: Stage, cfg: Schedule) -> float:
    """Frames of a clip coded per optimizer step (for ETAs: a step's cost is about proportional to it)."""
    return stage.frames / steps_per_clip(stage, cfg)


class ClipCursor:
    """Where an optimizer step is in the clip stream: clip-batch ``clip`` of the stage, P-frame ``frame``."""

    def __init__(self, step: int, per_clip: int):
        self.clip, offset = divmod(step, per_clip)
        self.frame = offset + 1 if per_clip > 1 else None
        """P-frame this step codes (per-frame updates), None for a whole-clip step."""
        self.first = offset == 0
        """The step starts a clip-batch: new clips are read."""


class HeldClips:
    """The micro-batches of the current clip-batch and each one's detached reference state, kept between the
    per-frame steps of a clip (the I-frame's state is made at the first step)."""

    def __init__(self) -> None:
        self.items: dict[int, tuple[Tensor, Tensor, object]] = {}

    def put(self, micro: int, frames: Tensor, q_index: Tensor, state=None) -> None:
        self.items[micro] = (frames, q_index, state)

    def get(self, micro: int) -> tuple[Tensor, Tensor, object]:
        if micro not in self.items:
            raise RuntimeError(f"per-frame step without its clip: micro-batch {micro} was not read")
        return self.items[micro]


def step_frames(schedule: Schedule, index: int) -> float:
    """``frames_per_step`` of stage ``index`` with its overrides applied."""
    stage = schedule.stages[index]
    return frames_per_step(stage, effective(schedule, stage))
