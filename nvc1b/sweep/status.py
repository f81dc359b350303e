"""``sweep status``: one line per model of a sweep: stages trained, the stage under way with its ETA, the state of
its SLURM jobs (when it was submitted) and the test sets evaluated. Reads only files under the run root and asks
the controller about recorded jobs; it works the same for `sweep run --local` and `sweep submit` run roots."""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from ..cluster.slurm import job_states
from ..cluster.submit import format_duration
from ..train.checkpointing import stage_export_path
from ..train.schedule import load_schedule
from .build import SweepModel
from .runs import model_run, read_json
from .spec import Sweep
from .submit import JOBS, recorded_job_ids

FAILED_JOB_STATES = {"FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}


@dataclass(frozen=True)
class ModelStatus:
    model: str
    state: str
    """not started, training, stopped, failed, trained or evaluated."""
    stages_done: int
    stages: int
    current: str
    """The stage under way: name, step/steps and ETA ('' when none)."""
    jobs: str
    """SLURM job states by count ('' when the model was not submitted or SLURM cannot be asked)."""
    evaluated: int
    datasets: int
    error: str = ""


def _jobs(record: dict) -> Counter:
    ids = recorded_job_ids(record)
    if not ids or shutil.which("scontrol") is None:
        return Counter()
    return Counter(s.state for s in job_states(ids).values())


def model_status(sweep: Sweep, model: SweepModel, run_root: Path, record: dict) -> ModelStatus:
    run = model_run(run_root, model.name)
    datasets = sweep.datasets
    evaluated = sum(run.eval_done(d).is_file() for d in datasets)
    jobs = _jobs(record)
    job_text = ", ".join(f"{state} {n}" for state, n in sorted(jobs.items()))
    if not run.schedule.is_file():
        return ModelStatus(model.name, "not started", 0, 0, "", job_text, evaluated, len(datasets))
    schedule = load_schedule(run.schedule)
    done = sum(stage_export_path(run.run_dir, i, s.name).is_file() for i, s in enumerate(schedule.stages))
    status = run.status()
    current, error = "", status.get("error", "")
    if status.get("state") in ("running", "stopped") and done < len(schedule.stages):
        current = f"{status.get('stage_name', '?')} {status.get('step', '?')}/{status.get('stage_steps', '?')}"
        eta = format_duration(status.get("eta_stage_s"))
        current += f" ETA {eta}" if eta else ""
    if done == len(schedule.stages):
        state = "evaluated" if datasets and evaluated == len(datasets) else "trained"
    elif status.get("state") == "failed" or FAILED_JOB_STATES & set(jobs):
        state = "failed"
    elif status.get("state") == "running":
        state = "training"
    elif status.get("state") == "stopped":
        state = "stopped"
    else:
        state = "not started"
    return ModelStatus(model.name, state, done, len(schedule.stages), current, job_text, evaluated, len(datasets),
                       error)


def sweep_status(sweep: Sweep, models: list[SweepModel], run_root: Path) -> list[ModelStatus]:
    record = read_json(Path(run_root) / JOBS, {})
    return [model_status(sweep, m, Path(run_root), record.get(m.name, {})) for m in models]


def render_status(rows: list[ModelStatus]) -> str:
    lines = [f"{'model':<10}{'state':<13}{'stages':>8}  {'under way':<32}{'evaluated':>10}  jobs"]
    for r in rows:
        lines.append(f"{r.model:<10}{r.state:<13}{f'{r.stages_done}/{r.stages}':>8}  {r.current:<32}"
                     f"{f'{r.evaluated}/{r.datasets}':>10}  {r.jobs}")
        if r.error:
            lines.append(f"{'':<10}error: {r.error}")
    counts = Counter(r.state for r in rows)
    lines.append(", ".join(f"{n} {state}" for state, n in counts.most_common()))
    return "\n".join(lines)


def status_json(rows: list[ModelStatus]) -> list[dict]:
    return [asdict(r) for r in rows]
