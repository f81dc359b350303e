"""A 3-model sweep of tiny variants end to end on this machine: each model trains a few steps (the Swin variant
included), its export codes and decodes real bitstreams exactly, and the report makes its tables and plot from
the results; a model whose evaluation fails is reported and the others go on."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nvc1b.sweep.build import resolve_models
from nvc1b.sweep.report import collect_report, write_report
from nvc1b.sweep.runs import model_run
from nvc1b.sweep.spec import load_sweep

ROOT = Path(__file__).resolve().parents[1]
HELPER = ROOT / "tests" / "helpers" / "sweep_script.py"
pytestmark = pytest.mark.slow

SCHEDULE = {
    "preset": "tiny", "crop": 32, "global_batch": 2, "micro_batch": 2, "zero_stage": 1, "checkpoint_every": 50,
    "stages": [
        {"name": "intra", "frames": 1, "parts": "Intra", "loss": "intra", "lr": 1e-3, "steps": 2},
        {"name": "all", "frames": 3, "parts": "All", "loss": "all_T", "lr": 5e-4, "steps": 2},
    ],
}


def load_rd(eval_dir: Path) -> dict:
    """The test's results loader: {test set: [{'q_index', 'bpp', 'psnr', 'exact'}]} from rd.json files."""
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(eval_dir.glob("*/rd.json"))}


def mean_rate_difference(anchor: list, test: list) -> float:
    """A stand-in for the evaluator's BD-rate (which this branch does not have): the relative difference of the
    mean bpp over the same rate points, in percent. Enough to check that the report shows what it is given."""
    return 100.0 * (sum(p["bpp"] for p in test) / sum(p["bpp"] for p in anchor) - 1.0)


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    (tmp / "schedule.yaml").write_text(yaml.safe_dump(SCHEDULE))
    spec = yaml.safe_load((ROOT / "stages" / "sweeps" / "tiny.yaml").read_text())
    spec.update(schedule="schedule.yaml", eval={"datasets": [str(ROOT / "data" / "synthetic.yaml")]})
    (tmp / "tiny.yaml").write_text(yaml.safe_dump(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NVC1B_PROGRESS": "0"}
    env.pop("RANK", None)
    proc = subprocess.run([sys.executable, str(HELPER), str(tmp / "tiny.yaml"), "--run-root", str(tmp / "runs"),
                           "--fail-eval", "T1"], env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return load_sweep(tmp / "tiny.yaml"), tmp / "runs"


def test_every_model_trains_and_its_bitstreams_decode_exactly(sweep_run):
    sweep, root = sweep_run
    models = resolve_models(sweep)
    assert [m.name for m in models] == ["T0", "T1", "T2"]
    assert models[2].config.contextual_codec.block_type == "swin"
    outcomes = json.loads((root / "outcomes.json").read_text())
    for m in models:
        run = model_run(root, m.name)
        assert run.final_export().is_file()
        assert json.loads((run.run_dir / "status.json").read_text())["state"] == "finished"
        assert outcomes[m.name]["training"] == "finished"
    for name in ("T0", "T2"):  # T2: the Swin contextual codec
        points = load_rd(model_run(root, name).eval_dir)["synthetic"]
        assert len(points) == 4 and all(p["exact"] for p in points)
        assert all(p["bpp"] > 0 for p in points)
    assert outcomes["T1"]["evaluations"] == {"synthetic": "failed"}
    assert "refused by the test" in outcomes["T1"]["error"]


def test_report_from_the_run_root(sweep_run, tmp_path):
    sweep, root = sweep_run
    models = resolve_models(sweep)
    report = collect_report(sweep, models, root, load_rd, mean_rate_difference)
    statuses = {e.name: e.status for e in report.entries}
    assert statuses == {"T0": "ok", "T1": "not evaluated", "T2": "ok"}
    assert report.bd_rates["T0"]["synthetic"] == pytest.approx(0.0)
    rd = {n: load_rd(model_run(root, n).eval_dir)["synthetic"] for n in ("T0", "T2")}
    assert report.bd_rates["T2"]["synthetic"] == pytest.approx(mean_rate_difference(rd["T0"], rd["T2"]))
    files = write_report(report, tmp_path / "report")
    assert {p.name for p in files} == {"bd_rate.md", "report.json", "fig-cc.png"}
    assert (tmp_path / "report" / "fig-cc.png").stat().st_size > 1000
    table = (tmp_path / "report" / "bd_rate.md").read_text()
    assert "| T1 |" in table and "not evaluated" in table
    assert f"{report.bd_rates['T2']['synthetic']:+.1f}%" in table


def test_status_lists_each_model(sweep_run, capsys):
    from nvc1b.cli import main

    sweep, root = sweep_run
    assert main(["sweep", "status", str(sweep.path), "--run-root", str(root), "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert {n: (r["state"], r["stages_done"], r["stages"], r["evaluated"]) for n, r in rows.items()} == {
        "T0": ("evaluated", 2, 2, 1), "T1": ("trained", 2, 2, 0), "T2": ("evaluated", 2, 2, 1)}
    assert main(["sweep", "status", str(sweep.path), "--run-root", str(root)]) == 0
    table = capsys.readouterr().out
    assert "T1" in table and "2 evaluated, 1 trained" in table
