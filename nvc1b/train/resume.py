"""Which checkpoint a resume starts from: the newest one that verifies against its completion record (every file's
size and SHA-256), falling back past damaged ones with a warning, or the one named by ``--from-checkpoint``.
``latest.json`` only points; the checkpoint's own record is what is believed, and it must fit the schedule."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..errors import ConfigError, NvcError
from .checkpointing import COMPLETE, LATEST, RECORD_FORMAT, Progress, checkpoint_dir, file_digest, read_latest
from .distributed import on_main
from .schedule import Schedule

log = logging.getLogger("nvc1b.train")


class CheckpointError(NvcError):
    """No checkpoint to resume from is intact, or the one asked for is damaged or missing."""


def complete_tags(run_dir: Path) -> list[str]:
    """Tags of the checkpoints that have a completion record, oldest first (tags sort by stage, then step)."""
    root = checkpoint_dir(run_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / COMPLETE).is_file())


def read_record(run_dir: Path, tag: str) -> dict | None:
    """The completion record of a checkpoint; None for an empty COMPLETE (written before records existed)."""
    path = checkpoint_dir(run_dir) / tag / COMPLETE
    text = path.read_text(errors="replace")
    if not text.strip():
        return None
    try:
        record = json.loads(text)
        if record.get("format") != RECORD_FORMAT:
            raise ValueError(f"format {record.get('format')!r}")
        Progress(**record["progress"])
        return record
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path}: unreadable completion record ({exc})") from None


def damage(run_dir: Path, tag: str) -> str | None:
    """What is wrong with a checkpoint (a missing, resized or altered file, an unreadable record), or None."""
    folder = checkpoint_dir(run_dir) / tag
    try:
        record = read_record(run_dir, tag)
    except CheckpointError as exc:
        return str(exc)
    if record is None:
        return None  # nothing to check against
    for name, expected in record["files"].items():
        path = folder / name
        if not path.is_file():
            return f"{path} is missing"
        size = path.stat().st_size
        if size != expected["size"]:
            return f"{path} has {size} bytes, its record says {expected['size']}"
        if file_digest(path) != expected["sha256"]:
            return f"{path} differs from its checksum (the bytes were altered)"
    if not record["files"]:
        return f"{folder}: the record lists no files"
    return None


def _progress(run_dir: Path, tag: str, latest: tuple[str, Progress] | None) -> Progress | None:
    record = read_record(run_dir, tag)
    if record is not None:
        progress = Progress(**record["progress"])
        if latest is not None and latest[0] == tag and latest[1] != progress:
            changed = [k for k, v in vars(progress).items() if getattr(latest[1], k) != v]
            log.warning("%s disagrees with the completion record of %s in %s; the record is used",
                        checkpoint_dir(run_dir) / LATEST, tag, ", ".join(changed))
        return progress
    if latest is not None and latest[0] == tag:
        return latest[1]
    return None  # an old-format checkpoint that latest.json does not describe: its progress is unknown


def _fits(run_dir: Path, tag: str, progress: Progress, schedule: Schedule) -> None:
    where = checkpoint_dir(run_dir) / tag
    stages = schedule.stages
    if not 0 <= progress.stage < len(stages) or stages[progress.stage].name != progress.stage_name:
        have = f"stage {progress.stage} is '{stages[progress.stage].name}'" if 0 <= progress.stage < len(stages) \
            else f"the schedule has stages 0..{len(stages) - 1}"
        raise ConfigError(f"{where}: the checkpoint is of stage {progress.stage} ('{progress.stage_name}'), but "
                          f"{have}; resume with the schedule this run was trained with")
    if progress.step < 0 or progress.total_steps < progress.step:
        raise CheckpointError(f"{where}: impossible progress (step {progress.step}, total {progress.total_steps})")


def choose_checkpoint(run_dir: Path, schedule: Schedule, from_tag: str | None = None) -> tuple[str, Progress] | None:
    """(tag, progress) to resume from, or None when the run has no checkpoint yet (rank 0 looks, all ranks get it)."""
    return on_main(lambda: _choose(Path(run_dir), schedule, from_tag))


def _choose(run_dir: Path, schedule: Schedule, from_tag: str | None) -> tuple[str, Progress] | None:
    root = checkpoint_dir(run_dir)
    tags = complete_tags(run_dir)
    try:
        latest = read_latest(run_dir)
    except NvcError as exc:
        log.warning("%s; looking for the newest intact checkpoint instead", exc)
        latest = None
    if from_tag is not None:
        if from_tag not in tags:
            raise CheckpointError(f"--from-checkpoint {from_tag}: no complete checkpoint of that name in {root} "
                                  f"(there are: {', '.join(tags) or 'none'})")
        problem = damage(run_dir, from_tag)
        if problem:
            raise CheckpointError(f"--from-checkpoint {from_tag}: the checkpoint is damaged: {problem}")
        progress = _progress(run_dir, from_tag, latest)
        if progress is None:
            raise CheckpointError(f"{root / from_tag}: written before completion records existed; its progress is "
                                  "only known while latest.json names it")
        _fits(run_dir, from_tag, progress, schedule)
        log.info("resuming from %s, chosen with --from-checkpoint", from_tag)
        return from_tag, progress
    if latest is not None and latest[0] not in tags:
        log.warning("%s names %s, which is not a complete checkpoint; looking for the newest intact one",
                    root / LATEST, latest[0])
    order = sorted(tags, key=lambda t: (latest is not None and t == latest[0], t), reverse=True)
    skipped = []
    for tag in order:
        problem = damage(run_dir, tag)
        progress = None if problem else _progress(run_dir, tag, latest)
        if progress is None:
            problem = problem or "written before completion records existed, and latest.json names another"
            log.warning("checkpoint %s is damaged or unusable (%s); falling back to the previous one", tag, problem)
            skipped.append(tag)
            continue
        _fits(run_dir, tag, progress, schedule)
        if skipped:
            log.warning("resuming from %s, the newest intact checkpoint (skipped: %s)", tag, ", ".join(skipped))
        return tag, progress
    if skipped:
        raise CheckpointError(f"{root}: no intact checkpoint to resume from (damaged: {', '.join(skipped)}); "
                              "start a new --run-dir, or train a single stage with --stage")
    return None
