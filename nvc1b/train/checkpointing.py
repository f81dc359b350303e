"""Checkpoints of a run: DeepSpeed's sharded format (model, optimizer) plus the run's progress, made "latest"
only once complete and verified, the last K kept; stage-final fp32 weights exported to safetensors.

Layout of a run directory::

    checkpoints/<tag>/...          DeepSpeed files of every rank, then COMPLETE
    checkpoints/<tag>/COMPLETE     the completion record: progress, and every file with its size and SHA-256
    checkpoints/latest.json        {"tag": ..., progress}: replaced atomically after COMPLETE exists
    abandoned/<tag>/               checkpoints a resume went back past (damaged, or newer than --from-checkpoint)
    exports/<stage>.safetensors    consolidated fp32 weights at the end of each stage (+ the preset)

Choosing, verifying and falling back on resume is ``nvc1b.train.resume``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..errors import DivergedError, NvcError
from ..files import disk_full_reported, write_text_atomic
from ..families import family_of
from ..model.export import EXPORT_DIR, save_model
from .distributed import DistInfo, any_rank, barrier, on_main

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LATEST = "latest.json"
COMPLETE = "COMPLETE"
ABANDONED = "abandoned"
"""Sub-directory of a run directory for checkpoints a resume went back past (see ``_set_aside_later``)."""
RECORD_FORMAT = "nvc1b-checkpoint/1"


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
    write_text_atomic(path, json.dumps(data, indent=1))


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * 2**20):
            digest.update(chunk)
    return digest.hexdigest()


def completion_record(folder: Path, progress: Progress) -> dict:
    """The record a checkpoint is verified against: its progress and every file's size and SHA-256, read back
    from the disk."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != COMPLETE):
        files[path.relative_to(folder).as_posix()] = {"size": path.stat().st_size, "sha256": file_digest(path)}
    return {"format": RECORD_FORMAT, "tag": folder.name, "progress": asdict(progress), "files": files}


def refuse_non_finite(module: torch.nn.Module, where: str, dist: DistInfo) -> None:
    """Stop (on every rank) before a checkpoint of weights holding NaN or infinity is written."""
    bad = None
    for name, param in module.named_parameters():
        local = getattr(param, "ds_tensor", param)  # ZeRO-3 keeps each rank's partition there
        if local.numel() and not torch.isfinite(local.detach()).all():
            bad = name
            break
    if any_rank(bad is not None, dist.device):
        raise DivergedError(
            f"{where}: the weights hold NaN or infinite values{f' (parameter {bad!r})' if bad else ''}; no checkpoint "
            "or export is written from them and the run's last checkpoint stays as it was: lower lr or check the data"
        )


def save_checkpoint(engine, run_dir: Path, progress: Progress, keep: int, dist: DistInfo) -> str:
    """Write a checkpoint of every rank; it becomes latest only after all ranks finished writing and rank 0 has
    read every file back into the completion record. A full disk removes the partial checkpoint."""
    tag = f"{progress.stage:02d}-{progress.stage_name}-step{progress.step:07d}"
    root = checkpoint_dir(run_dir)
    refuse_non_finite(engine.module, f"stage {progress.stage} ('{progress.stage_name}') step {progress.step}", dist)
    if dist.main:
        _set_aside_later(run_dir, tag)
    barrier()
    failure: BaseException | None = None
    try:
        with disk_full_reported(root / tag):
            engine.save_checkpoint(str(root), tag=tag, client_state={"progress": asdict(progress)}, save_latest=False)
    except NvcError as exc:
        failure = exc
    if any_rank(failure is not None, dist.device):
        barrier()
        if dist.main:
            shutil.rmtree(root / tag, ignore_errors=True)
        raise failure or NvcError(f"{root / tag}: another rank failed to write its part of the checkpoint")
    barrier()  # every rank's shards are on disk

    def complete() -> None:
        _fault_point("after_shards", progress.step)
        with disk_full_reported(root / tag, root / tag):
            record = completion_record(root / tag, progress)
            _write_json_atomic(root / tag / COMPLETE, record)
            _write_json_atomic(root / LATEST, {"tag": tag, "progress": asdict(progress)})
        _prune(root, keep, protect=tag)

    on_main(complete)
    barrier()
    return tag


def _set_aside_later(run_dir: Path, tag: str) -> None:
    """Move complete checkpoints at or after ``tag`` (left by the trajectory a resume went back from: damaged ones
    skipped on resume, newer ones passed over by --from-checkpoint) to ``abandoned/``, so that none is overwritten,
    none outranks the new ones and none is lost; partial ones are removed."""
    root = checkpoint_dir(run_dir)
    later = sorted(p for p in root.iterdir() if p.is_dir() and p.name >= tag) if root.is_dir() else []
    for path in later:
        if not (path / COMPLETE).exists():  # a partial write: nothing to keep
            shutil.rmtree(path, ignore_errors=True)
            continue
        target = Path(run_dir) / ABANDONED / path.name
        n = 1
        while target.exists():
            target, n = Path(run_dir) / ABANDONED / f"{path.name}.{n}", n + 1
        target.parent.mkdir(exist_ok=True)
        os.replace(path, target)
        log.warning("%s is later than the checkpoint being written (the run went back past it): moved to %s",
                    path, target)


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
    try:
        path, _ = engine.load_checkpoint(
            str(checkpoint_dir(run_dir)), tag=tag, load_optimizer_states=True, load_lr_scheduler_states=False
        )
    except RuntimeError as exc:  # strict loading: the tensors are not this model's (an earlier nvc1b model version)
        if "state_dict" not in str(exc):
            raise
        first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), "")
        raise NvcError(f"{checkpoint_dir(run_dir) / tag}: the checkpoint's tensors do not fit this model (written by "
                       f"another preset or an earlier nvc1b model version): {first[:160]}") from None
    if path is None:
        raise NvcError(f"{checkpoint_dir(run_dir) / tag}: DeepSpeed could not load this checkpoint")


def consolidated_weights(run_dir: Path, tag: str, start: torch.nn.Module) -> dict:
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


def export_stage(run_dir: Path, tag: str, start: torch.nn.Module, index: int, name: str, dist: DistInfo) -> Path:
    """Consolidate the stage-final checkpoint into fp32 and export it with the preset (rank 0 writes)."""
    path = stage_export_path(run_dir, index, name)

    def export() -> None:
        _fault_point("before_export", index)
        fresh = family_of(start).build(start.config)
        fresh.load_state_dict(consolidated_weights(run_dir, tag, start))
        save_model(fresh, path, extra={"stage": name, "checkpoint": tag})
        log.info("exported stage %s weights to %s", name, path)

    on_main(export)
    barrier()
    return path


def _fault_point(name: str, step: int) -> None:
    """Test hook: NVC1B_FAULT=after_shards:STEP makes the process die here while writing the checkpoint of
    that stage step, as a crash mid-checkpoint would; before_export:INDEX dies between stage INDEX's final
    checkpoint and its export."""
    if os.environ.get("NVC1B_FAULT") == f"{name}:{step}":
        os._exit(9)
