"""Submitting a schedule as a chain of SLURM jobs (one per stage, each `afterok` on the one before), and
reading back its status or cancelling it. The run directory records every submission in slurm/jobs.json.

One run may be submitted in phases on different profiles (the paper's 2-frame stages on 32 A40s, then the cascaded
ones on 4 A800s): each submission writes its own resolved schedule (``slurm/schedule-NN-<profile>.yaml``) that its
jobs read, and ``after='last'`` chains a phase on the newest job of the run still queued or running."""

from __future__ import annotations

import json
import os
import re
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
from .slurm import JobState, job_states, sbatch, sbatch_command, scancel

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
    dependency: str | None = None
    """sbatch --dependency of the job ('afterok:<job>'; a dry run names the earlier job as $JOB_NN)."""
    profile: str = ""


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


def _snapshot_path(slurm_dir: Path, profile: ClusterProfile) -> Path:
    """slurm/schedule-NN-<profile>.yaml, NN one past the newest submission's."""
    numbers = [int(m.group(1)) for p in slurm_dir.glob("schedule-*.yaml") if (m := re.match(r"schedule-(\d+)-", p.name))]
    return slurm_dir / f"schedule-{max(numbers, default=0) + 1:02d}-{profile.name}.yaml"


def newest_active_job(run_dir: Path) -> str | None:
    """The newest recorded job of the run that SLURM still has queued or running, or None."""
    path = Path(run_dir) / SLURM_DIR / JOBS
    jobs = json.loads(path.read_text()) if path.is_file() else []
    ids = [j["job_id"] for j in jobs]
    states = job_states(list(dict.fromkeys(ids)))
    active = [i for i in ids if states[i].state in ACTIVE]
    return active[-1] if active else None


def _first_dependency(run_dir: Path, after: str | None) -> str | None:
    if not after:
        return None
    if after == "last":
        job = newest_active_job(run_dir)
        return f"afterok:{job}" if job else None
    if not after.isdigit():
        raise ConfigError(f"--after {after}: give a SLURM job id or 'last'")
    return f"afterok:{after}"


def submit_chain(
    schedule_path: Path, profile: ClusterProfile, run_dir: Path, stages: str | None = None, dry_run: bool = False,
    after: str | None = None,
) -> list[Submission]:
    """Write one script per stage into ``run_dir/slurm`` and submit them as an afterok chain; the first job waits
    for ``after`` (a job id, or 'last': the newest job of this run still queued or running)."""
    schedule = load_schedule(schedule_path)
    resolved = resolve_for_profile(schedule, profile, str(schedule_path))
    chosen = parse_stage_range(schedule, stages)
    slurm_dir = Path(run_dir) / SLURM_DIR
    slurm_dir.mkdir(parents=True, exist_ok=True)
    resolved_path = _snapshot_path(slurm_dir, profile)
    tmp = resolved_path.with_name(f".{resolved_path.name}.tmp-{os.getpid()}")
    tmp.write_text(yaml.safe_dump(resolved.model_dump(mode="json"), sort_keys=False))
    os.replace(tmp, resolved_path)
    dependency = _first_dependency(run_dir, after)
    submissions = []
    for index in chosen:
        name = schedule.stages[index].name
        script = slurm_dir / f"{index:02d}-{name}.sbatch"
        script.write_text(render_stage_script(profile, resolved_path, run_dir, index, name))
        job_id = None if dry_run else sbatch(script, dependency=dependency)
        submissions.append(Submission(index, name, script, job_id, dependency, profile.name))
        dependency = f"afterok:{job_id if job_id else f'$JOB_{index:02d}'}"
    if not dry_run:
        _record(run_dir, submissions, resolved_path)
    return submissions


def dry_run_commands(submissions: list[Submission]) -> list[str]:
    """The sbatch command of each job of a dry run, as shell lines that would submit the chain."""
    return [f"JOB_{s.index:02d}=$({' '.join(sbatch_command(s.script, s.dependency))})" for s in submissions]


def _record(run_dir: Path, submissions: list[Submission], schedule_path: Path) -> None:
    path = Path(run_dir) / SLURM_DIR / JOBS
    jobs = json.loads(path.read_text()) if path.is_file() else []
    jobs += [{"index": s.index, "stage": s.stage, "job_id": s.job_id, "script": str(s.script), "submitted": time.time(),
              "profile": s.profile, "schedule": str(schedule_path), "dependency": s.dependency}
             for s in submissions]
    tmp = path.with_name(f".{JOBS}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(jobs, indent=1))
    os.replace(tmp, path)


def recorded_jobs(run_dir: Path) -> list[dict]:
    """The newest submission of each stage, in stage order ([] for a run never submitted)."""
    path = Path(run_dir) / SLURM_DIR / JOBS
    newest: dict[int, dict] = {}
    for job in json.loads(path.read_text()) if path.is_file() else []:
        newest[job["index"]] = job
    return [newest[i] for i in sorted(newest)]


@dataclass(frozen=True)
class StageStatus:
    index: int
    stage: str
    job: JobState | None
    """None for a stage never submitted (a local run)."""
    progress: str
    eta: str
    checkpoint: str
    profile: str = ""


def _run_stages(run_dir: Path, jobs: list[dict]) -> list[str]:
    """Stage names of the run: its schedule.yaml (written by the trainer), else the newest submission's snapshot."""
    candidates = [Path(run_dir) / "schedule.yaml", *sorted((Path(run_dir) / SLURM_DIR).glob("schedule-*.yaml"))[::-1]]
    for path in candidates:
        if path.is_file():
            return [s.name for s in load_schedule(path).stages]
    names = {j["index"]: j["stage"] for j in jobs}
    return [names.get(i, "?") for i in range(max(names, default=-1) + 1)]


def run_status(run_dir: Path) -> tuple[dict, list[StageStatus]]:
    """The run's own status.json and, for each stage, its SLURM state (where a job was submitted), progress, ETA
    and newest checkpoint; works for local and submitted runs alike."""
    run_dir = Path(run_dir)
    jobs = recorded_jobs(run_dir)
    status_path = run_dir / STATUS
    status = json.loads(status_path.read_text()) if status_path.is_file() else {}
    if not jobs and not status and not (run_dir / "schedule.yaml").is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no status.json, schedule.yaml or {SLURM_DIR}/{JOBS})")
    states = job_states([j["job_id"] for j in jobs])
    by_index = {j["index"]: j for j in jobs}
    latest = read_latest(run_dir)
    rows = []
    for index, name in enumerate(_run_stages(run_dir, jobs)):
        job = by_index.get(index)
        progress = eta = checkpoint = ""
        if stage_export_path(run_dir, index, name).is_file():
            progress = "done"
        elif status.get("stage") == index and "step" in status:
            progress = f"{status['step']}/{status.get('stage_steps', '?')}"
            eta = format_duration(status.get("eta_stage_s"))
        if latest and latest[1].stage == index:
            checkpoint = latest[0]
        rows.append(StageStatus(index, name, states[job["job_id"]] if job else None, progress, eta, checkpoint,
                                job.get("profile", "") if job else ""))
    return status, rows


def cancel_run(run_dir: Path) -> list[str]:
    """Cancel the run's pending and running jobs; returns their ids."""
    jobs = recorded_jobs(run_dir)
    states = job_states([j["job_id"] for j in jobs])
    active = [j for j, s in states.items() if s.state in ACTIVE]
    scancel(active)
    return active
