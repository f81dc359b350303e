"""Where a sweep's runs live and what each model trains with.

Layout of a run root (one per sweep, or shared by sweeps with the same baseline)::

    <run-root>/<model>/preset.yaml      the model's resolved preset
    <run-root>/<model>/schedule.yaml    the sweep's schedule with that preset and the chosen stages
    <run-root>/<model>/run/             its training run directory (exports/, status.json, slurm/, logs/)
    <run-root>/<model>/eval/<set>/      evaluation output for each test set (``nvc1b eval --out``)
    <run-root>/<model>/eval/<set>.done  written once that evaluation has finished
    <run-root>/jobs.json                SLURM jobs of each model (``sweep submit``)
    <run-root>/outcomes.json            what happened to each model in a local run (``sweep run --local``)

Every model's schedule names the same training data, so the runs of a sweep read the same shards; a model
whose files are already there with the same preset is reused (the baseline of two sweeps trains once).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from ..cluster.submit import parse_stage_range
from ..config.loading import format_validation_error
from ..errors import ConfigError
from ..families import preset_family
from ..train.checkpointing import stage_export_path
from ..train.observe import STATUS
from ..train.schedule import Schedule, load_schedule
from .build import SweepModel, preset_data
from .spec import Sweep


@dataclass(frozen=True)
class ModelRun:
    """The files of one model of a sweep under a run root."""

    root: Path
    """<run-root>/<model>."""

    @property
    def preset(self) -> Path:
        return self.root / "preset.yaml"

    @property
    def schedule(self) -> Path:
        return self.root / "schedule.yaml"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    def eval_out(self, dataset: Path) -> Path:
        return self.eval_dir / dataset.stem

    def eval_done(self, dataset: Path) -> Path:
        return self.eval_dir / f"{dataset.stem}.done"

    def final_export(self) -> Path:
        """The export of the schedule's last stage: the checkpoint that is evaluated."""
        schedule = load_schedule(self.schedule)
        last = len(schedule.stages) - 1
        return stage_export_path(self.run_dir, last, schedule.stages[last].name)

    def status(self) -> dict:
        """The training run's status.json ({} before it starts)."""
        path = self.run_dir / STATUS
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}


def model_run(run_root: Path, name: str) -> ModelRun:
    return ModelRun(Path(run_root) / name)


def model_schedule(sweep: Sweep, preset: Path | str, steps: int | None = None, schedule: Path | None = None) -> Schedule:
    """The sweep's schedule for one model: its preset, the spec's overrides and stages, and optionally every
    stage cut to ``steps`` optimizer steps (smoke tests and demos)."""
    schedule = schedule or sweep.schedule_path
    base = load_schedule(schedule)
    data = base.model_dump(mode="json")
    data.update(sweep.spec.overrides)
    data["preset"] = str(preset)
    own = schedule != sweep.schedule_path  # a model's own schedule is trained whole
    chosen = parse_stage_range(base, None if own else sweep.spec.stages)
    data["stages"] = [data["stages"][i] for i in chosen]
    if steps is not None:
        for stage in data["stages"]:
            if stage.get("weights") is None:
                stage.update(steps=steps, epochs=None)
    try:
        return Schedule.model_validate(data, context={"family": preset_family(preset).name})
    except ValidationError as exc:
        source = f"{sweep.path}: schedule {schedule} with the sweep's overrides"
        raise ConfigError(format_validation_error(exc, source)) from None


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def prepare_model(sweep: Sweep, run_root: Path, model: SweepModel, steps: int | None = None) -> ModelRun:
    """Write the model's preset and schedule under the run root; refuse a run root that holds the same model
    name with a different preset (its runs would not be this model's)."""
    run = model_run(run_root, model.name)
    preset_text = yaml.safe_dump(preset_data(model), sort_keys=False)
    if run.preset.is_file() and run.preset.read_text() != preset_text:
        raise ConfigError(
            f"{run.root}: holds a model '{model.name}' with a different preset; use another --run-root or remove it"
        )
    _write_atomic(run.preset, preset_text)
    schedule = model_schedule(sweep, run.preset.resolve(), steps, sweep.schedule_of(model.spec))
    _write_atomic(run.schedule, yaml.safe_dump(schedule.model_dump(mode="json"), sort_keys=False))
    return run


def read_json(path: Path, default):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


def write_json(path: Path, data) -> None:
    _write_atomic(Path(path), json.dumps(data, indent=1))
