"""`nvc1b submit --dry-run` and `nvc1b status` without a SLURM controller: the chain printed as sbatch commands with
their dependencies, one resolved schedule per submission, status of a run that was never submitted."""

import json
from pathlib import Path

import yaml

from nvc1b.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
SCHEDULE = str(ROOT / "stages" / "nvc1b_rgb.yaml")


def test_dry_run_prints_each_sbatch_command_with_its_dependency(tmp_path, capsys):
    run_dir = tmp_path / "rgb"
    assert main(["submit", SCHEDULE, "--cluster", str(ROOT / "cluster" / "a40x32.yaml"), "--run-dir", str(run_dir),
                 "--stages", "..t11-recon-recRD", "--dry-run"]) == 0
    chain = [line for line in capsys.readouterr().out.splitlines() if line.startswith("JOB_")]
    assert len(chain) == 12
    assert chain[0] == f"JOB_00=$(sbatch --parsable --kill-on-invalid-dep=yes {run_dir}/slurm/00-intra.sbatch)"
    assert chain[11] == ("JOB_11=$(sbatch --parsable --kill-on-invalid-dep=yes --dependency=afterok:$JOB_10 "
                         f"{run_dir}/slurm/11-t11-recon-recRD.sbatch)")


def test_each_submission_keeps_its_own_resolved_schedule(tmp_path, capsys):
    run_dir = tmp_path / "rgb"
    for profile, stages in (("a40x32", "..t11-recon-recRD"), ("a800x4", "t12-all..")):
        assert main(["submit", SCHEDULE, "--cluster", str(ROOT / "cluster" / f"{profile}.yaml"),
                     "--run-dir", str(run_dir), "--stages", stages, "--dry-run"]) == 0
    capsys.readouterr()
    first = yaml.safe_load((run_dir / "slurm" / "schedule-01-a40x32.yaml").read_text())
    second = yaml.safe_load((run_dir / "slurm" / "schedule-02-a800x4.yaml").read_text())
    assert (first["micro_batch"], second["micro_batch"]) == (1, 2)
    assert first["global_batch"] == second["global_batch"] == 32
    assert "slurm/schedule-01-a40x32.yaml --run-dir" in (run_dir / "slurm" / "03-t03-recon-recD.sbatch").read_text()
    assert "slurm/schedule-02-a800x4.yaml --run-dir" in (run_dir / "slurm" / "15-t15-all.sbatch").read_text()
    assert "srun --kill-on-bad-exit=1 --nodes=\"$SLURM_NNODES\" --ntasks-per-node=1 --cpus-per-task=32 " in \
        (run_dir / "slurm" / "15-t15-all.sbatch").read_text()


def test_after_must_be_a_job_id_or_last(tmp_path, capsys):
    assert main(["submit", SCHEDULE, "--cluster", str(ROOT / "cluster" / "a800x4.yaml"), "--run-dir", str(tmp_path),
                 "--after", "phase1", "--dry-run"]) == 2
    assert "--after phase1: give a SLURM job id or 'last'" in capsys.readouterr().err


def test_status_of_a_local_run(tmp_path, capsys):
    run_dir = tmp_path / "local"
    (run_dir / "exports").mkdir(parents=True)
    (run_dir / "schedule.yaml").write_text((ROOT / "stages" / "demo.yaml").read_text())
    (run_dir / "exports" / "00-intra.safetensors").write_bytes(b"")
    (run_dir / "status.json").write_text(json.dumps({
        "state": "running", "stage": 1, "stage_name": "t01-inter-meD", "step": 3, "stage_steps": 8,
        "total_steps": 19, "eta_stage_s": 65.0, "eta_schedule_s": 4000.0}))
    assert main(["status", "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"run {run_dir}: running at stage 1 ('t01-inter-meD'), 19 steps in all, schedule ETA 1h06m"
    rows = [line.split() for line in out[2:]]
    assert [r[:2] for r in rows] == [[f"{i:02d}", s["name"]] for i, s in
                                     enumerate(yaml.safe_load((ROOT / "stages" / "demo.yaml").read_text())["stages"])]
    assert rows[0][2:] == ["-", "done"] and rows[1][2:] == ["-", "3/8", "1m05s"] and rows[2][2:] == ["-"]


def test_status_of_a_directory_that_is_no_run(tmp_path, capsys):
    assert main(["status", "--run-dir", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
