"""The report's tables and plots from hand-made curves (no BD-rate here: a stand-in returns the number each test
curve carries, so the table must show exactly those), and each model's status read from its run directory."""

import json
from pathlib import Path

import pytest
import yaml

from nvc1b.errors import NvcError
from nvc1b.sweep.build import resolve_models
from nvc1b.sweep.report import OK, ReportEntry, make_report, model_status, write_report
from nvc1b.sweep.runs import model_run, prepare_model
from nvc1b.sweep.spec import load_sweep

ROOT = Path(__file__).resolve().parents[1]
FIGURES = {"a": "Fig. A: one part", "b": "Fig. B: another part"}


def given(anchor: dict, test: dict) -> float:
    """Stand-in for the evaluator's BD-rate: the value stored in the test curve (or undefined)."""
    if test.get("undefined"):
        raise ValueError("curves do not overlap")
    return test["value"] - anchor["value"]


@pytest.fixture
def report():
    entries = [
        ReportEntry("B", 20_000_000),
        ReportEntry("M1", 50_000_000, ("a",)),
        ReportEntry("M2", 70_000_000, ("a",)),
        ReportEntry("M3", 90_000_000, ("a", "b"), status="diverged", note="stage 12 diverged"),
        ReportEntry("M4", 200_000_000, ("b",)),
    ]
    curves = {
        "B": {"HEVC_B": {"value": 0.0}, "UVG": {"value": 0.0}},
        "M1": {"HEVC_B": {"value": -12.5}, "UVG": {"value": -8.25}},
        "M2": {"HEVC_B": {"value": 3.0}, "UVG": {"undefined": True}},
        "M4": {"HEVC_B": {"value": -20.0}},
    }
    return make_report("toy", "B", FIGURES, entries, curves, given)


def test_table_shows_the_values_it_is_given(report):
    assert report.datasets == ["HEVC_B", "UVG"]
    assert report.bd_rates["M1"] == {"HEVC_B": -12.5, "UVG": -8.25}
    assert report.bd_rates["B"] == {"HEVC_B": 0.0, "UVG": 0.0}
    assert report.average("M1") == pytest.approx(-10.375)
    table = report.render()
    row = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
           for line in table.splitlines() if line.startswith("| ") and not line.startswith("| model")}
    assert row["M1"] == ["50.0M", "-12.5%", "-8.2%", "-10.4%"]
    assert row["B (anchor)"] == ["20.0M", "+0.0%", "+0.0%", "+0.0%"]
    assert row["M2"] == ["70.0M", "+3.0%", "n/a", "n/a"]  # BD-rate undefined on UVG: no average
    assert row["M3"] == ["90.0M", "diverged", "diverged", "diverged"]
    assert row["M4"] == ["200.0M", "-20.0%", "n/a", "n/a"]  # not evaluated on UVG
    assert "- M3: stage 12 diverged" in table


def test_plots_and_json(report, tmp_path):
    files = write_report(report, tmp_path)
    assert sorted(p.name for p in files) == ["bd_rate.md", "fig-a.png", "fig-b.png", "report.json"]
    for name in ("fig-a.png", "fig-b.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((tmp_path / "report.json").read_text())
    by_name = {m["name"]: m for m in data["models"]}
    assert by_name["M3"]["status"] == "diverged" and by_name["M3"]["bd_rate"] == {}
    assert by_name["M1"]["average"] == pytest.approx(-10.375)


def test_plot_marks_models_without_results(report, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from nvc1b.sweep import report as report_module

    captured = {}
    real_close = plt.close

    def keep(fig):
        captured["texts"] = [t.get_text() for t in fig.axes[0].texts]
        captured["lines"] = {line.get_label(): line.get_xydata().tolist() for line in fig.axes[0].lines}
        real_close(fig)

    plt.close = keep
    try:
        report_module.plot_figure(report, "a", tmp_path / "a.png")
    finally:
        plt.close = real_close
    assert "M3: diverged" in captured["texts"]
    assert captured["lines"]["HEVC_B"] == [[20.0, 0.0], [50.0, -12.5], [70.0, 3.0]]
    assert captured["lines"]["UVG"] == [[20.0, 0.0], [50.0, -8.25]]


def test_status_of_each_model_from_its_run(tmp_path):
    sweep = load_sweep(ROOT / "stages" / "sweeps" / "tiny.yaml")
    t0, t1, t2 = resolve_models(sweep)
    assert model_status(sweep, tmp_path, t0) == ("not run", "")
    for m in (t0, t1, t2):
        prepare_model(sweep, tmp_path, m)
    assert model_status(sweep, tmp_path, t0) == ("not started", "")
    run = model_run(tmp_path, "T1")
    run.run_dir.mkdir(parents=True)
    (run.run_dir / "status.json").write_text(json.dumps(
        {"state": "failed", "failure": "diverged", "error": "stage 5 ('t12-all') diverged: 5 bad steps"}))
    assert model_status(sweep, tmp_path, t1) == ("diverged", "stage 5 ('t12-all') diverged: 5 bad steps")
    run = model_run(tmp_path, "T2")
    export = run.final_export()
    export.parent.mkdir(parents=True)
    export.write_bytes(b"weights")
    (run.run_dir / "status.json").write_text(json.dumps({"state": "finished"}))
    assert model_status(sweep, tmp_path, t2) == ("not evaluated", "")
    run.eval_done(sweep.datasets[0]).parent.mkdir(parents=True)
    run.eval_done(sweep.datasets[0]).write_text("")
    assert model_status(sweep, tmp_path, t2) == (OK, "")


def test_a_run_root_keeps_one_preset_per_model_name(tmp_path):
    sweep = load_sweep(ROOT / "stages" / "sweeps" / "tiny.yaml")
    t0, t1, _ = resolve_models(sweep)
    prepare_model(sweep, tmp_path, t0)
    prepare_model(sweep, tmp_path, t0)  # the same model again: reused
    schedule = yaml.safe_load(model_run(tmp_path, "T0").schedule.read_text())
    assert schedule["preset"] == str(model_run(tmp_path, "T0").preset.resolve())
    assert schedule["stages"][0]["name"] == "intra"
    impostor = t1.__class__(t1.spec.model_copy(update={"name": "T0"}), t1.config, t1.count)
    with pytest.raises(NvcError, match="holds a model 'T0' with a different preset"):
        prepare_model(sweep, tmp_path, impostor)
