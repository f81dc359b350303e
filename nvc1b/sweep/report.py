"""``sweep report``: BD-rate of every model against the baseline per test set (tables like the paper's) and
BD-rate against parameters, one plot per figure of the spec (like Figs. 2-6), with failed models marked.

The seam to the evaluator is ``make_report``: per-model curves per test set and a BD-rate function in, tables
out. ``collect_report`` feeds it from a run root (training status, evaluation folders); the tests feed it by hand.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NvcError
from .build import SweepModel
from .evaluation import BdRate, Curve, ResultsLoader
from .runs import model_run
from .spec import Sweep

log = logging.getLogger("nvc1b.sweep")

OK = "ok"
"""Status of a model whose results are in; any other status is shown instead of its numbers."""


@dataclass(frozen=True)
class ReportEntry:
    """One model as the report shows it."""

    name: str
    parameters: int
    figures: tuple[str, ...] = ()
    status: str = OK
    """ok, diverged, failed, training, not evaluated, ..."""
    note: str = ""


@dataclass
class Report:
    sweep: str
    baseline: str
    figures: dict[str, str]
    entries: list[ReportEntry]
    datasets: list[str]
    bd_rates: dict[str, dict[str, float | None]] = field(default_factory=dict)
    """Model → test set → BD-rate in percent vs the baseline (None: undefined or missing)."""

    def cell(self, model: str, dataset: str) -> str:
        entry = next(e for e in self.entries if e.name == model)
        if entry.status != OK:
            return entry.status
        value = self.bd_rates.get(model, {}).get(dataset)
        return "n/a" if value is None else f"{value:+.1f}%"

    def average(self, model: str) -> float | None:
        """Mean BD-rate over the test sets, when every one is defined."""
        values = [self.bd_rates.get(model, {}).get(d) for d in self.datasets]
        return None if not values or any(v is None for v in values) else sum(values) / len(values)

    def render(self) -> str:
        """Markdown: one row per model, one column per test set, the average last."""
        head = ["model", "params", *self.datasets, "average"]
        lines = [f"BD-rate vs {self.baseline} (sweep {self.sweep}; negative = bits saved)", "",
                 "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for e in self.entries:
            avg = self.average(e.name) if e.status == OK else None
            last = e.status if e.status != OK else ("n/a" if avg is None else f"{avg:+.1f}%")
            cells = [e.name + (" (anchor)" if e.name == self.baseline else ""), f"{e.parameters / 1e6:.1f}M",
                     *(self.cell(e.name, d) for d in self.datasets), last]
            lines.append("| " + " | ".join(cells) + " |")
        notes = [f"- {e.name}: {e.note}" for e in self.entries if e.note]
        return "\n".join(lines + ([""] + notes if notes else []))

    def as_json(self) -> dict:
        return {"sweep": self.sweep, "baseline": self.baseline, "datasets": self.datasets,
                "models": [{"name": e.name, "parameters": e.parameters, "figures": list(e.figures),
                            "status": e.status, "note": e.note, "bd_rate": self.bd_rates.get(e.name, {}),
                            "average": self.average(e.name) if e.status == OK else None} for e in self.entries]}


def make_report(
    sweep_name: str, baseline: str, figures: Mapping[str, str], entries: Sequence[ReportEntry],
    curves: Mapping[str, Mapping[str, Curve]], bd_rate: BdRate,
) -> Report:
    """BD-rate of every model with status ok against ``baseline``, per test set: the report's one entry point.

    ``curves`` maps model → test set → curve (as the evaluator's loader returns them); ``bd_rate(anchor, test)``
    is the evaluator's. A BD-rate that cannot be computed (no overlap, a crashed model) is shown as n/a.
    """
    datasets = sorted({d for per_model in curves.values() for d in per_model})
    anchor = curves.get(baseline, {})
    report = Report(sweep_name, baseline, dict(figures), list(entries), datasets)
    for e in entries:
        if e.status != OK:
            continue
        row: dict[str, float | None] = {}
        for d in datasets:
            test = curves.get(e.name, {}).get(d)
            if test is None or d not in anchor:
                row[d] = None
                continue
            try:
                value = float(bd_rate(anchor[d], test))
            except (ArithmeticError, ValueError, NvcError) as exc:
                log.warning("BD-rate of %s on %s vs %s is undefined: %s", e.name, d, baseline, exc)
                value = None
            row[d] = value if value is None or math.isfinite(value) else None
        report.bd_rates[e.name] = row
    return report


def model_status(sweep: Sweep, run_root: Path, model: SweepModel) -> tuple[str, str]:
    """(status, note) of a model from its run directory: trained and evaluated, or where it stopped."""
    run = model_run(run_root, model.name)
    if not run.schedule.is_file():
        return "not run", ""
    status = run.status()
    if status.get("state") == "failed":
        failure = status.get("failure", "failed")
        return ("diverged" if failure == "diverged" else "failed"), status.get("error", "")
    if not run.final_export().is_file():
        return ("training" if status else "not started"), ""
    missing = [d.stem for d in sweep.datasets if not run.eval_done(d).is_file()]
    if missing and len(missing) == len(sweep.datasets):
        return "not evaluated", ""
    return OK, (f"not evaluated on {', '.join(missing)}" if missing else "")


def collect_report(
    sweep: Sweep, models: Sequence[SweepModel], run_root: Path, load_results: ResultsLoader, bd_rate: BdRate,
) -> Report:
    """Statuses from the run root, curves from each evaluated model's evaluation folder, then ``make_report``."""
    entries, curves = [], {}
    for m in models:
        status, note = model_status(sweep, run_root, m)
        if status == OK:
            try:
                curves[m.name] = dict(load_results(model_run(run_root, m.name).eval_dir))
            except (OSError, ValueError, NvcError) as exc:
                status, note = "unreadable results", str(exc)
        entries.append(ReportEntry(m.name, m.total, tuple(m.spec.figures), status, note))
    return make_report(sweep.spec.name, sweep.spec.baseline, sweep.spec.figures, entries, curves, bd_rate)


def plot_figure(report: Report, figure: str, path: Path) -> Path:
    """BD-rate vs parameters of the models in ``figure``, one line per test set; models without results are
    marked at the top of the plot with their status. The baseline sits at 0%."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    members = [e for e in report.entries if figure in e.figures or e.name == report.baseline]
    members.sort(key=lambda e: e.parameters)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for d in report.datasets:
        points = [(e.parameters / 1e6, report.bd_rates[e.name][d]) for e in members
                  if e.status == OK and report.bd_rates.get(e.name, {}).get(d) is not None]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", label=d)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    for e in members:
        if e.status == OK:
            ax.annotate(e.name, (e.parameters / 1e6, 0.0), textcoords="offset points", xytext=(0, -12),
                        ha="center", fontsize=7, color="grey")
        else:
            ax.plot([e.parameters / 1e6], [1.0], marker="x", color="red", transform=ax.get_xaxis_transform(),
                    clip_on=False)
            ax.annotate(f"{e.name}: {e.status}", (e.parameters / 1e6, 1.0), xycoords=("data", "axes fraction"),
                        textcoords="offset points", xytext=(0, 4), ha="center", fontsize=7, color="red")
    ax.set_xlabel("parameters (M)")
    ax.set_ylabel(f"BD-rate vs {report.baseline} (%)")
    ax.set_title(report.figures.get(figure, figure), fontsize=9, pad=16)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(report: Report, out: Path) -> list[Path]:
    """bd_rate.md, report.json and one fig-<id>.png per figure into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bd_rate.md").write_text(report.render() + "\n")
    (out / "report.json").write_text(json.dumps(report.as_json(), indent=1))
    files = [out / "bd_rate.md", out / "report.json"]
    for figure in report.figures:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in figure)
        files.append(plot_figure(report, figure, out / f"fig-{safe}.png"))
    return files
