"""Submitting a schedule as a chain of SLURM jobs (one per stage, each `afterok` on the one before), and
reading back its status or cancelling it. The run directory records every submission in slurm/jobs.json."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import ConfigError
from ..train.checkpointing import read_latest, stage_export_path
from ..train.observe import STATUS, format_duration
from ..train.schedule import Schedule, effective, load_schedule
from ..train.stage import accumulation_steps
from .profile import ClusterProfile
from .render import render_stage_script
from .slurm import JobState, job_states, sbatch, scancel

SLURM_DIR = "slurm"
JOBS = "jobs.json"
ACTIVE = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "SUSPENDED", "COMPLETING", "REQUEUE_HOLD", "RESIZING"}


@dataclass(frozen=True)
class Submission:
    index: int
    stage: str
    script: Path
    job_id: str | None
    """None for a dry run."""


def parse_stage_range(schedule: Schedule, text: str | None) -> range:
    """'A..B' (names or indices, inclusive), a single stage, or None for all stages."""
    if not text:
        return range(len(schedule.stages))
    first, sep, last = text.partition("..")
    start = schedule.index(first) if first else 0
    end = schedule.index(last) if sep and last else (len(schedule.stages) - 1 if sep else start)
    if end < start:
        raise ConfigError(f"--stages {text}: the last stage comes before the first")
    return range(start, end + 1)


def resolve_for_profile(schedule: Schedule, profile: ClusterProfile, source: str) -> Schedule:
    """The schedule with the profile's hardware defaults (micro-batch, ZeRO stage), checked for this world size."""
    changes = {k: getattr(profile, k) for k in ("micro_batch", "zero_stage") if getattr(profile, k) is not None}
    resolved = schedule.model_copy(update=changes)
    for i, stage in enumerate(resolved.stages):
        eff = effective(resolved, stage)
        accumulation_steps(eff.global_batch, eff.micro_batch, profile.world_size, f"{source}: stage {i} ('{stage.name}') on {profile.name}")
    return resolved


def submit_chain(
    schedule_path: Path, profile: ClusterProfile, run_dir: Path, stages: str | None = None, dry_run: bool = False,
) -> list[Submission]:
    """Write one script per stage into ``run_dir/slurm`` and submit them as an afterok chain."""
    schedule = load_schedule(schedule_path)
    resolved = resolve_for_profile(schedule, profile, str(schedule_path))
    chosen = parse_stage_range(schedule, stages)
    slurm_dir = Path(run_dir) / SLURM_DIR
    slurm_dir.mkdir(parents=True, exist_ok=True)
    resolved_path = slurm_dir / "schedule.yaml"
    resolved_path.write_text(yaml.safe_dump(resolved.model_dump(mode="json"), sort_keys=False))
    submissions, previous = [], None
    for index in chosen:
        name = schedule.stages[index].name
        script = slurm_dir / f"{index:02d}-{name}.sbatch"
        script.write_text(render_stage_script(profile, resolved_path, run_dir, index, name))
        job_id = None
        if not dry_run:
            job_id = sbatch(script, dependency=f"afterok:{previous}" if previous else None)
            previous = job_id
        submissions.append(Submission(index, name, script, job_id))
    if not dry_run:
        _record(run_dir, submissions)
    return submissions


def _record(run_dir: Path, submissions: list[Submission]) -> None:
    path = Path(run_dir) / SLURM_DIR / JOBS
    jobs = json.loads(path.read_text()) if path.is_file() else []
    jobs += [{"index": s.index, "stage": s.stage, "job_id": s.job_id, "script": str(s.script), "submitted": time.time()}
             for s in submissions]
    tmp = path.with_name(f".{JOBS}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(jobs, indent=1))
    os.replace(tmp, path)


def recorded_jobs(run_dir: Path) -> list[dict]:
    """The newest submission of each stage, in stage order."""
    path = Path(run_dir) / SLURM_DIR / JOBS
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no SLURM jobs recorded ({path} is missing); submit with `nvc1b submit`")
    newest: dict[int, dict] = {}
    for job in json.loads(path.read_text()):
        newest[job["index"]] = job
    return [newest[i] for i in sorted(newest)]


@dataclass(frozen=True)
class StageStatus:
    index: int
    stage: str
    job: JobState
    progress: str
    eta: str
    checkpoint: str


def run_status(run_dir: Path) -> list[StageStatus]:
    """Each submitted stage's SLURM state joined with the run's own status and newest checkpoint."""
    jobs = recorded_jobs(run_dir)
    states = job_states([j["job_id"] for j in jobs])
    status_path = Path(run_dir) / STATUS
    status = json.loads(status_path.read_text()) if status_path.is_file() else {}
    latest = read_latest(Path(run_dir))
    rows = []
    for job in jobs:
        index = job["index"]
        progress = eta = checkpoint = ""
        if stage_export_path(Path(run_dir), index, job["stage"]).is_file():
            progress = "done"
        elif status.get("stage") == index and "step" in status:
            progress = f"{status['step']}/{status.get('stage_steps', '?')}"
            eta = format_duration(status.get("eta_stage_s"))
        if latest and latest[1].stage == index:
            checkpoint = latest[0]
        rows.append(StageStatus(index, job["stage"], states[job["job_id"]], progress, eta, checkpoint))
    return rows


def cancel_run(run_dir: Path) -> list[str]:
    """Cancel the run's pending and running jobs; returns their ids."""
    jobs = recorded_jobs(run_dir)
    states = job_states([j["job_id"] for j in jobs])
    active = [j for j, s in states.items() if s.state in ACTIVE]
    scancel(active)
    return active
