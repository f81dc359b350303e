"""``sweep submit``: every model's stage chain plus an evaluation job afterok on its last stage, written as scripts
(dry run) and submitted to a real local SLURM controller; a model that cannot be submitted is reported while the
others go on, and a model with jobs still queued is not submitted twice."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nvc1b.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "stages" / "sweeps" / "tiny.yaml"


def test_dry_run_writes_each_chain_and_its_evaluation(tmp_path, capsys):
    root = tmp_path / "runs"
    assert main(["sweep", "submit", str(TINY), "--cluster", str(ROOT / "cluster" / "a800x4.yaml"),
                 "--run-root", str(root), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[:2] for line in out.splitlines()] == [["T0", "dry-run"], ["T1", "dry-run"], ["T2", "dry-run"]]
    for model in ("T0", "T1", "T2"):
        slurm = root / model / "run" / "slurm"
        stages = sorted(p.name for p in slurm.glob("0*.sbatch"))
        assert stages[0] == "00-intra.sbatch" and stages[-1] == "06-t13-all.sbatch" and len(stages) == 7
        assert yaml.safe_load((root / model / "schedule.yaml").read_text())["preset"] == \
            str((root / model / "preset.yaml").resolve())
        script = (slurm / "eval.sbatch").read_text()
        export = root.resolve() / model / "run" / "exports" / "06-t13-all.safetensors"
        assert f"-m nvc1b eval --checkpoint {export} --dataset {ROOT / 'data' / 'synthetic.yaml'} " \
               f"--out {root.resolve() / model / 'eval' / 'synthetic'}" in script
        assert f"touch {root.resolve() / model / 'eval' / 'synthetic.done'}" in script
        assert "#SBATCH --gres=gpu:a800:1" in script
        assert subprocess.run(["bash", "-n", str(slurm / "eval.sbatch")], check=False).returncode == 0
    assert not (root / "jobs.json").exists()


@pytest.mark.slow
def test_submission_chains_training_and_evaluation(slurm, tmp_path, capsys):
    schedule = {"preset": "tiny", "crop": 32, "global_batch": 2, "micro_batch": 2, "zero_stage": 1,
                "data": {"train": str(tmp_path / "no-data"), "workers": 0},
                "stages": [{"name": "intra", "frames": 1, "parts": "Intra", "loss": "intra", "lr": 1e-3, "steps": 1},
                           {"name": "all", "frames": 2, "parts": "All", "loss": "all_T", "lr": 1e-3, "steps": 1}]}
    (tmp_path / "schedule.yaml").write_text(yaml.safe_dump(schedule))
    spec = yaml.safe_load(TINY.read_text())
    spec.update(schedule="schedule.yaml", eval={"datasets": [str(ROOT / "data" / "synthetic.yaml")]})
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(spec))
    profile = yaml.safe_load((ROOT / "cluster" / "local.yaml").read_text())
    profile.update(python=sys.executable, setup=["export OMP_NUM_THREADS=1", "export NVC1B_PROGRESS=0"],
                   extra_sbatch=["--begin=now+3600"])  # queued, never started: only the dependencies matter here
    (tmp_path / "local.yaml").write_text(yaml.safe_dump(profile))
    root = tmp_path / "runs"
    (root / "T1").mkdir(parents=True)
    (root / "T1" / "preset.yaml").write_text("name: someone-else\n")  # T1's folder holds another model
    args = ["sweep", "submit", str(tmp_path / "tiny.yaml"), "--cluster", str(tmp_path / "local.yaml"),
            "--run-root", str(root)]
    try:
        assert main(args) == 1  # T1 failed to submit, the others are in
        lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
        assert "failed" in lines["T1"] and "different preset" in lines["T1"]
        jobs = json.loads((root / "jobs.json").read_text())
        assert sorted(jobs) == ["T0", "T2"]
        for model in ("T0", "T2"):
            (intra, everything), evaluation = jobs[model]["chain"], jobs[model]["eval_job"]
            assert f"afterok:{intra}" in slurm.job(everything)["Dependency"]
            assert f"afterok:{everything}" in slurm.job(evaluation)["Dependency"]
            assert slurm.job(evaluation)["JobName"] == f"nvc1b-runs-{model}-eval"
        assert main(args) == 1  # again: T0 and T2 have jobs queued and are left alone
        lines = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()}
        assert lines == {"T0": "queued", "T1": "failed", "T2": "queued"}
        assert json.loads((root / "jobs.json").read_text()) == jobs
        assert main(["sweep", "status", str(tmp_path / "tiny.yaml"), "--run-root", str(root), "--json"]) == 0
        rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
        assert rows["T0"]["jobs"] == rows["T2"]["jobs"] == "PENDING 3"  # two stages and the evaluation, held
        assert rows["T0"]["state"] == "not started" and rows["T0"]["stages"] == 2 and rows["T1"]["jobs"] == ""
    finally:
        subprocess.run(["scancel", "--user=root"], env=slurm.env(), capture_output=True, check=False)
