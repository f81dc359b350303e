"""``sweep run --local``: every model of a sweep trained in this process, one after another, then evaluated
through an ``Evaluate`` function (the ``nvc1b eval`` command by default). A model that fails is recorded in
``<run-root>/outcomes.json`` and the sweep goes on; a model already trained and evaluated is skipped."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..errors import DivergedError, NvcError
from ..train.schedule import load_schedule
from ..train.stage import ClipSource
from ..train.trainer import RunOptions, train
from .build import SweepModel
from .evaluation import Evaluate
from .runs import ModelRun, prepare_model, read_json, write_json
from .spec import Sweep

log = logging.getLogger("nvc1b.sweep")
OUTCOMES = "outcomes.json"


@dataclass
class ModelOutcome:
    """What happened to one model."""

    model: str
    training: str = "pending"
    """finished, diverged, failed, stopped or skipped (already finished)."""
    evaluations: dict[str, str] = field(default_factory=dict)
    """Test-set name → done, failed or skipped."""
    error: str = ""
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.training in ("diverged", "failed", "stopped") or "failed" in self.evaluations.values()

    def describe(self) -> str:
        evals = ", ".join(f"{k} {v}" for k, v in self.evaluations.items())
        line = f"{self.model:<8} training {self.training:<9}" + (f" eval: {evals}" if evals else "")
        return line + (f" ({self.error})" if self.error else "") + f" [{self.seconds:.0f} s]"


def _train(run: ModelRun, outcome: ModelOutcome, data: ClipSource | None) -> bool:
    """Train one model (resuming its run if there is one); True when its last stage finished."""
    if run.final_export().is_file():
        outcome.training = "skipped"
        return True
    try:
        result = train(load_schedule(run.schedule), RunOptions(run.run_dir, resume=True), data=data)
    except DivergedError as exc:
        outcome.training, outcome.error = "diverged", str(exc)
        return False
    except (NvcError, torch.OutOfMemoryError) as exc:
        outcome.training, outcome.error = "failed", str(exc).splitlines()[0]
        return False
    if result.stopped:
        outcome.training, outcome.error = "stopped", f"the run stopped ({result.stop_reason})"
        return False
    outcome.training = "finished"
    return True


def _evaluate(run: ModelRun, datasets: list[Path], evaluate: Evaluate, outcome: ModelOutcome) -> None:
    checkpoint = run.final_export()
    for dataset in datasets:
        if run.eval_done(dataset).is_file():
            outcome.evaluations[dataset.stem] = "skipped"
            continue
        try:
            evaluate(checkpoint, dataset, run.eval_out(dataset))
        except Exception as exc:  # the evaluator is outside the sweep: report its failure and go on
            log.exception("model %s: evaluation on %s failed", outcome.model, dataset.name)
            outcome.evaluations[dataset.stem] = "failed"
            outcome.error = f"{dataset.stem}: {exc}".splitlines()[0]
            continue
        run.eval_done(dataset).write_text(f"{time.time()}\n")
        outcome.evaluations[dataset.stem] = "done"


def run_sweep_local(
    sweep: Sweep, models: list[SweepModel], run_root: Path, *, steps: int | None = None,
    evaluate: Evaluate | None = None, data: ClipSource | None = None,
) -> list[ModelOutcome]:
    """Train each model (every stage cut to ``steps`` steps if given), then evaluate its final export on the
    spec's test sets with ``evaluate`` (None: train only). ``data`` replaces the schedule's training data."""
    run_root = Path(run_root)
    run_root.mkdir(parents=True, exist_ok=True)
    record = read_json(run_root / OUTCOMES, {})
    outcomes = []
    for model in models:
        start = time.perf_counter()
        outcome = ModelOutcome(model.name)
        log.info("sweep %s: model %s (%.2fM parameters)", sweep.spec.name, model.name, model.total / 1e6)
        try:
            run = prepare_model(sweep, run_root, model, steps)
        except NvcError as exc:
            outcome.training, outcome.error, run = "failed", str(exc), None
        if run is not None and _train(run, outcome, data) and evaluate is not None:
            _evaluate(run, sweep.datasets, evaluate, outcome)
        outcome.seconds = time.perf_counter() - start
        if outcome.failed:
            log.warning("sweep %s: model %s: %s", sweep.spec.name, model.name, outcome.describe())
        record[model.name] = asdict(outcome)
        write_json(run_root / OUTCOMES, record)
        outcomes.append(outcome)
    return outcomes
