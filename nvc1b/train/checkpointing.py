"""Checkpoints of a run: DeepSpeed's sharded format (model, optimizer) plus the run's progress, made "latest"
only once complete, the last K kept; stage-final fp32 weights exported to safetensors.

Layout of a run directory::

    checkpoints/<tag>/...          DeepSpeed files of every rank, then COMPLETE
    checkpoints/latest.json        {"tag": ..., progress}: replaced atomically after COMPLETE exists
    exports/<stage>.safetensors    consolidated fp32 weights at the end of each stage (+ the preset)
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import NvcError
from ..model.codec import VideoCodec
from ..model.export import EXPORT_DIR, save_model
from .distributed import DistInfo, barrier

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LATEST = "latest.json"
COMPLETE = "COMPLETE"


@dataclass
class Progress:
    """Where a run stands; saved with every checkpoint."""

    stage: int
    """Index of the stage in the schedule."""
    stage_name: str
    step: int
    """Optimizer steps done in this stage."""
    total_steps: int
    """Optimizer steps done in the whole run."""
    lr_factor: float = 1.0
    """Product of the rollback learning-rate factors applied in this stage."""
    rollbacks: int = 0
    world_size: int = 1
    """Ranks that wrote the checkpoint (a different count resumes through the fp32 path)."""
    stage_done: bool = False


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR


def stage_export_path(run_dir: Path, index: int, name: str) -> Path:
    return Path(run_dir) / EXPORT_DIR / f"{index:02d}-{name}.safetensors"


def read_latest(run_dir: Path) -> tuple[str, Progress] | None:
    """The newest complete checkpoint of a run, or None."""
    path = checkpoint_dir(run_dir) / LATEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return data["tag"], Progress(**data["progress"])
    except (ValueError, KeyError, TypeError) as exc:
        raise NvcError(f"{path}: unreadable checkpoint pointer ({exc})") from None


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def save_checkpoint(engine, run_dir: Path, progress: Progress, keep: int, dist: DistInfo) -> str:
    """Write a checkpoint of every rank; it becomes latest only after all ranks finished writing."""
    tag = f"{progress.stage:02d}-{progress.stage_name}-step{progress.step:07d}"
    root = checkpoint_dir(run_dir)
    engine.save_checkpoint(str(root), tag=tag, client_state={"progress": asdict(progress)}, save_latest=False)
    barrier()  # every rank's shards are on disk
    if dist.main:
        _fault_point("after_shards", progress.step)
        (root / tag / COMPLETE).write_text("")
        _write_json_atomic(root / LATEST, {"tag": tag, "progress": asdict(progress)})
        _prune(root, keep, protect=tag)
    barrier()
    return tag


def _prune(root: Path, keep: int, protect: str) -> None:
    """Keep the newest ``keep`` complete checkpoints; remove older ones and incomplete leftovers."""
    tags = sorted(p for p in root.iterdir() if p.is_dir())
    complete = [p for p in tags if (p / COMPLETE).exists()]
    doomed = complete[:-keep] + [p for p in tags if not (p / COMPLETE).exists()]
    for path in doomed:
        if path.name != protect:
            shutil.rmtree(path, ignore_errors=True)


def load_same_world(engine, run_dir: Path, tag: str) -> None:
    """Restore model and optimizer exactly (the checkpoint was written by as many ranks as there are now)."""
    path, _ = engine.load_checkpoint(
        str(checkpoint_dir(run_dir)), tag=tag, load_optimizer_states=True, load_lr_scheduler_states=False
    )
    if path is None:
        raise NvcError(f"{checkpoint_dir(run_dir) / tag}: DeepSpeed could not load this checkpoint")


def consolidated_weights(run_dir: Path, tag: str, start: VideoCodec) -> dict:
    """fp32 weights of the whole codec from a sharded checkpoint of any world size (DeepSpeed's zero_to_fp32).

    Depending on the ZeRO stage, zero_to_fp32 may leave out parameters that were frozen; those did not change
    during the stage, so they are taken from ``start``, the model the stage began from.
    """
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    with contextlib.redirect_stdout(io.StringIO()) as chatter:  # zero_to_fp32 prints its progress
        state = get_fp32_state_dict_from_zero_checkpoint(str(checkpoint_dir(run_dir)), tag=tag)
    log.debug("zero_to_fp32: %s", chatter.getvalue().strip())
    prefix = "codec."
    merged = {k: v.detach().cpu() for k, v in start.state_dict().items()}
    for key, value in state.items():
        if key.startswith(prefix):
            merged[key[len(prefix):]] = value
    return merged


def export_stage(run_dir: Path, tag: str, start: VideoCodec, index: int, name: str, dist: DistInfo) -> Path:
    """Consolidate the stage-final checkpoint into fp32 and export it with the preset (rank 0 writes)."""
    path = stage_export_path(run_dir, index, name)
    if dist.main:
        _fault_point("before_export", index)
        fresh = VideoCodec(start.config)
        fresh.load_state_dict(consolidated_weights(run_dir, tag, start))
        save_model(fresh, path, extra={"stage": name, "checkpoint": tag})
        log.info("exported stage %s weights to %s", name, path)
    barrier()
    return path


def _fault_point(name: str, step: int) -> None:
    """Test hook: NVC1B_FAULT=after_shards:STEP makes the process die here while writing the checkpoint of
    that stage step, as a crash mid-checkpoint would; before_export:INDEX dies between stage INDEX's final
    checkpoint and its export."""
    if os.environ.get("NVC1B_FAULT") == f"{name}:{step}":
        os._exit(9)
