"""``sweep submit``: each model's stage chain (``submit_chain``: one job per stage, afterok) plus one evaluation
job afterok on its last stage. Models already trained and evaluated, or with jobs still queued, are left alone;
a model that cannot be submitted is reported and the others go on."""

from __future__ import annotations

import logging
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from ..cluster.profile import ClusterProfile
from ..cluster.slurm import job_states, sbatch
from ..cluster.submit import ACTIVE, SLURM_DIR, submit_chain
from ..errors import ConfigError, NvcError
from .build import SweepModel
from .evaluation import eval_command
from .runs import ModelRun, prepare_model, read_json, write_json
from .spec import Sweep

log = logging.getLogger("nvc1b.sweep")

EVAL_TEMPLATE = Path(__file__).resolve().parents[2] / "cluster" / "eval.sbatch.template"
JOBS = "jobs.json"


@dataclass
class ModelSubmission:
    """What ``sweep submit`` did with one model."""

    model: str
    action: str
    """submitted, dry-run, done (trained and evaluated already), queued (jobs still active) or failed."""
    chain: list[str] = field(default_factory=list)
    """Job ids of the training stages, in order."""
    eval_job: str | None = None
    scripts: list[Path] = field(default_factory=list)
    error: str = ""

    def describe(self) -> str:
        jobs = ""
        if self.chain:
            jobs = f" stages {','.join(self.chain)}" + (f" eval {self.eval_job}" if self.eval_job else "")
        elif self.scripts:
            jobs = f" {len(self.scripts)} scripts in {self.scripts[0].parent}"
        return f"{self.model:<8} {self.action:<9}{jobs}" + (f" ({self.error})" if self.error else "")


def render_eval_script(profile: ClusterProfile, run: ModelRun, model: str, datasets: list[Path],
                       template: Path = EVAL_TEMPLATE) -> str:
    """The sbatch script that evaluates the model's final export on each test set (one GPU)."""
    try:
        text = template.read_text()
    except OSError as exc:
        raise ConfigError(f"{template}: cannot read the evaluation sbatch template ({exc.strerror})") from None
    checkpoint = run.final_export().resolve()
    evaluations = [
        {"name": d.stem, "done": run.eval_done(d).resolve(),
         "command": shlex.join(eval_command(checkpoint, d, run.eval_out(d).resolve(), python=profile.python))}
        for d in datasets
    ]
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["quote"] = lambda value: shlex.quote(str(value))
    run_name = run.root.resolve().parent.name
    try:
        return env.from_string(text).render(
            p=profile, model=model, evaluations=evaluations, job_name=f"nvc1b-{run_name}-{model}-eval",
            log_dir=run.run_dir.resolve() / SLURM_DIR,
        )
    except jinja2.TemplateError as exc:
        raise ConfigError(f"{template}: {exc}") from None


def recorded_job_ids(recorded: dict) -> list[str]:
    """A model's stage jobs and its evaluation job, from its entry in the run root's jobs.json."""
    return [*recorded.get("chain", []), *([recorded["eval_job"]] if recorded.get("eval_job") else [])]


def _already(run: ModelRun, datasets: list[Path], recorded: dict) -> str | None:
    """'done' or 'queued' when the model needs no new jobs."""
    if run.schedule.is_file() and run.final_export().is_file() and all(run.eval_done(d).is_file() for d in datasets):
        return "done"
    jobs = recorded_job_ids(recorded)
    if jobs and any(s.state in ACTIVE for s in job_states(jobs).values()):
        return "queued"
    return None


def submit_model(sweep: Sweep, model: SweepModel, profile: ClusterProfile, run_root: Path, dry_run: bool,
                 recorded: dict) -> ModelSubmission:
    run = prepare_model(sweep, run_root, model)
    datasets = sweep.datasets
    if not dry_run:
        state = _already(run, datasets, recorded)
        if state:
            return ModelSubmission(model.name, state, recorded.get("chain", []), recorded.get("eval_job"))
    subs = submit_chain(run.schedule, profile, run.run_dir, None, dry_run)
    result = ModelSubmission(model.name, "dry-run" if dry_run else "submitted",
                             [s.job_id for s in subs if s.job_id], scripts=[s.script for s in subs])
    if datasets:
        script = run.run_dir / SLURM_DIR / "eval.sbatch"
        script.write_text(render_eval_script(profile, run, model.name, datasets))
        result.scripts.append(script)
        if not dry_run:
            result.eval_job = sbatch(script, dependency=f"afterok:{result.chain[-1]}")
    return result


def submit_sweep(sweep: Sweep, models: list[SweepModel], profile: ClusterProfile, run_root: Path,
                 dry_run: bool = False) -> list[ModelSubmission]:
    """Submit every model; the baseline first, since every comparison needs it."""
    run_root = Path(run_root)
    run_root.mkdir(parents=True, exist_ok=True)
    record = read_json(run_root / JOBS, {})
    order = sorted(models, key=lambda m: m.name != sweep.spec.baseline)
    results = []
    for model in order:
        try:
            result = submit_model(sweep, model, profile, run_root, dry_run, record.get(model.name, {}))
        except NvcError as exc:
            log.warning("sweep %s: model %s not submitted: %s", sweep.spec.name, model.name, exc)
            result = ModelSubmission(model.name, "failed", error=str(exc))
        if result.action == "submitted":
            record[model.name] = {"chain": result.chain, "eval_job": result.eval_job, "submitted": time.time()}
            write_json(run_root / JOBS, record)
        results.append(result)
    return results
