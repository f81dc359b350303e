"""Running a schedule: stages in order, each from the previous stage's export; --stage, --resume, --max-steps.
Stop requests (SIGUSR1/SIGTERM, e.g. SLURM's warning before the time limit) end the current step on all ranks,
write a checkpoint and leave with exit status ``EXIT_STOPPED``."""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, DivergedError, NvcError
from .checkpointing import Progress, read_latest, stage_export_path
from .distributed import DistInfo, barrier, setup_distributed
from .observe import Monitor, setup_logging, write_status
from .resume import choose_checkpoint
from .rundir import RunDirectory, check_resumable, keep_schedule
from .schedule import Schedule
from .stage import ClipSource, StageContext, export_finished_stage, run_stage, stage_steps
from .updates import step_frames

log = logging.getLogger("nvc1b.train")

EXIT_STOPPED = 3
"""Exit status of a run that stopped on request after writing a checkpoint (it can be resumed)."""


@dataclass
class RunOptions:
    run_dir: Path
    stage: str | int | None = None
    """Run only this stage (name or index)."""
    resume: bool = False
    """Continue from the run's newest complete checkpoint."""
    max_steps: int | None = None
    """End the whole run after this many optimizer steps in total."""
    checkpoint_every: int | None = None
    """Override the schedule's checkpoint interval."""
    from_checkpoint: str | None = None
    """Resume from this checkpoint tag instead of the newest intact one (implies resume)."""

    def __post_init__(self) -> None:
        for key in ("max_steps", "checkpoint_every"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"--{key.replace('_', '-')}: must be a whole number of at least 1, got {value!r}")
        if self.from_checkpoint is not None:
            self.resume = True


@dataclass
class RunResult:
    progress: Progress | None
    stopped: bool
    """True when a stop request or --max-steps ended the run before its last stage finished."""
    stop_reason: str = ""
    """'signal', 'stop-file' or 'max-steps' when stopped."""


class StopFlag:
    """Set by SIGUSR1/SIGTERM or by the file named in NVC1B_STOP_FILE (written by the sbatch script when SLURM's
    warning signal arrives); the trainer checks it after every optimizer step."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.stop_file = os.environ.get("NVC1B_STOP_FILE")

    def install(self) -> None:
        for sig in (signal.SIGUSR1, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        self.signal = signum

    def __call__(self) -> bool:
        return self.signal is not None or bool(self.stop_file and os.path.exists(self.stop_file))


def _start_point(schedule: Schedule, opts: RunOptions, run_dir: Path,
                 latest: tuple[str, Progress] | None) -> tuple[int, Progress | None, str | None]:
    """(first stage index, progress to continue from, checkpoint tag to load), given the checkpoint ``latest``
    chosen to continue from. With --stage and --resume, a first index past the chosen stage means it is already
    done: a stage job that SLURM or a user runs again trains nothing (see ``_finished_stage``)."""
    only = schedule.index(opts.stage) if opts.stage is not None else None
    if not opts.resume:
        if latest is not None and only is None:
            raise NvcError(f"{run_dir}: the run directory already has checkpoints; use --resume or a new --run-dir")
        return (only or 0), None, None
    if latest is None:
        log.info("%s: no checkpoint yet, starting from the beginning", run_dir)
        return (only or 0), None, None
    tag, progress = latest
    if only is not None and only != progress.stage:
        if only < progress.stage:
            return _finished_stage(schedule, run_dir, only, progress), progress, None
        # a later stage starts fresh; the run's step count goes on (TensorBoard's step is the run's global step)
        return only, Progress(only, schedule.stages[only].name, 0, progress.total_steps), None
    if progress.stage_done:
        return progress.stage + 1, Progress(progress.stage + 1, "", 0, progress.total_steps), None
    log.info("resuming stage %d ('%s') at step %d from %s", progress.stage, progress.stage_name, progress.step, tag)
    return progress.stage, progress, tag


def _finished_stage(schedule: Schedule, run_dir: Path, index: int, latest: Progress) -> int:
    """Index past stage ``index``, which an earlier job finished (the run's newest checkpoint is of a later stage)."""
    path = stage_export_path(run_dir, index, schedule.stages[index].name)
    if not path.is_file():
        raise NvcError(
            f"stage {index} ('{schedule.stages[index].name}') has no export {path}, but the run has moved on to "
            f"stage {latest.stage} ('{latest.stage_name}'); train it again without --resume"
        )
    return index + 1


def _complete_export(schedule: Schedule, run_dir: Path, tag: str, progress: Progress, data: ClipSource,
                     dist: DistInfo) -> None:
    """Write the export of a finished stage from its final checkpoint if a crash came between the two."""
    name = schedule.stages[progress.stage].name
    if not progress.stage_done or stage_export_path(run_dir, progress.stage, name).is_file():
        return
    log.info("stage %d ('%s') finished but has no export: writing it from checkpoint %s", progress.stage, name, tag)
    export_finished_stage(StageContext(schedule, progress.stage, run_dir, dist, data, monitor=None), tag)


def train(schedule: Schedule, opts: RunOptions, data: ClipSource | None = None, dist: DistInfo | None = None) -> RunResult:
    """Train ``schedule`` into ``opts.run_dir``; every rank calls this."""
    dist = dist or setup_distributed()
    run_dir = Path(opts.run_dir)
    if dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
    barrier()
    setup_logging(run_dir, dist)
    with RunDirectory(run_dir, dist):  # one trainer per run directory, for the whole run
        return _train_locked(schedule, opts, data, dist, run_dir)


def _warn_untrained_adaptors(schedule: Schedule) -> None:
    """An NVC schedule whose P-frame clips are too short to reach every feature adaptor trains a model whose later
    P-frames go through untrained ones: say so once, at the start (it is allowed: short demos and tests do it)."""
    from .clip import schedule_adaptor_note

    if note := schedule_adaptor_note(schedule):
        log.warning("this schedule: %s", note)


def _train_locked(schedule: Schedule, opts: RunOptions, data: ClipSource | None, dist: DistInfo,
                  run_dir: Path) -> RunResult:
    if data is None:
        from ..data.training import open_training_data

        if dist.main:  # rank 0 builds the built-in set (if needed) before the others look for it
            data = open_training_data(schedule.data, dist.device)
        barrier()
        data = data or open_training_data(schedule.data, dist.device)
        data.num_clips()  # a missing or empty manifest fails here, on every rank, before any engine starts
    # resume: the newest verified checkpoint (or --from-checkpoint), falling back past damaged ones
    latest = choose_checkpoint(run_dir, schedule, opts.from_checkpoint) if opts.resume else read_latest(run_dir)
    first, progress, tag = _start_point(schedule, opts, run_dir, latest)
    check_resumable(run_dir, schedule, trained=first + (1 if progress is not None and progress.step > 0 else 0))
    last = schedule.index(opts.stage) + 1 if opts.stage is not None else len(schedule.stages)
    if latest is not None and opts.resume:
        _complete_export(schedule, run_dir, *latest, data, dist)
    if first >= last:
        log.info("stage %d ('%s') is already done (%s): nothing to train", last - 1, schedule.stages[last - 1].name,
                 stage_export_path(run_dir, last - 1, schedule.stages[last - 1].name))
        return RunResult(progress, stopped=False)
    if dist.main:
        keep_schedule(run_dir, schedule)
        _warn_untrained_adaptors(schedule)
    stop = StopFlag()
    stop.install()
    monitor = Monitor(run_dir, dist, schedule.progress_every, schedule.progress_seconds)
    num_clips = data.num_clips()
    total_steps = progress.total_steps if progress else 0
    try:
        for index in range(first, last):
            stage = schedule.stages[index]
            if progress is None or progress.stage != index:
                progress = Progress(index, stage.name, 0, total_steps, world_size=dist.world_size)
            progress.stage_name = stage.name
            future = sum(stage_steps(schedule, i, num_clips) * step_frames(schedule, i) for i in range(index + 1, last))
            ctx = StageContext(
                schedule, index, run_dir, dist, data, monitor, future_frame_steps=future,
                max_total_steps=opts.max_steps, checkpoint_every=opts.checkpoint_every, stop_requested=stop,
            )
            result = run_stage(ctx, progress, tag)
            progress, tag, total_steps = result.progress, None, result.progress.total_steps
            if not result.finished or (opts.max_steps is not None and total_steps >= opts.max_steps and index + 1 < last):
                reason = "max-steps" if not stop() else ("signal" if stop.signal is not None else "stop-file")
                state = "max-steps" if reason == "max-steps" else "stopped"
                if reason == "stop-file" and dist.main:  # tell the sbatch script the checkpoint is written
                    Path(stop.stop_file + ".done").touch()
                    Path(stop.stop_file).unlink(missing_ok=True)
                if dist.main:
                    write_status(run_dir, state=state, stage=index, stage_name=stage.name, step=progress.step,
                                 total_steps=total_steps)
                log.info("run %s at stage %s step %d (total %d steps)", state, stage.name, progress.step, total_steps)
                return RunResult(progress, stopped=True, stop_reason=reason)
        if dist.main:
            write_status(run_dir, state="finished", stage=last - 1, stage_name=schedule.stages[last - 1].name,
                         total_steps=total_steps)
        return RunResult(progress, stopped=False)
    except NvcError as exc:
        if dist.main:
            write_status(run_dir, state="failed", stage=progress.stage if progress else first,
                         failure="diverged" if isinstance(exc, DivergedError) else "error", error=str(exc))
        raise
    finally:
        monitor.close()
