"""Submission, dependencies, preemption with requeue, status and cancel against a real SLURM controller
started on this machine (skipped with the reason when SLURM cannot be installed or run here)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file


ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    from nvc1b.data.builtin import ensure_builtin_dataset

    return ensure_builtin_dataset(tmp_path_factory.mktemp("data"), clips=16).train_manifest


def write_schedule(path: Path, manifest: Path, inter_steps: int = 6, **top) -> Path:
    data = {
        "preset": "tiny", "data": {"train": str(manifest), "workers": 0}, "crop": 32, "global_batch": 2,
        "micro_batch": 2, "zero_stage": 1, "checkpoint_every": 2, **top,
        "stages": [
            {"name": "intra", "frames": 1, "parts": "Intra", "loss": "intra", "lr": 1e-3, "steps": 2},
            {"name": "inter", "frames": 2, "parts": "Inter", "loss": "meRD", "lr": 1e-3, "steps": inter_steps},
        ],
    }
    path.write_text(yaml.safe_dump(data))
    return path


def write_profile(path: Path) -> Path:
    profile = yaml.safe_load((ROOT / "cluster" / "local.yaml").read_text())
    profile.update(python=sys.executable, time_limit="00:30:00",
                   setup=["export OMP_NUM_THREADS=1", "export NVC1B_PROGRESS=0"])
    path.write_text(yaml.safe_dump(profile))
    return path


def nvc1b(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nvc1b", *args], capture_output=True, text=True, timeout=300)


def submit(schedule: Path, profile: Path, run_dir: Path) -> list[str]:
    proc = nvc1b("submit", str(schedule), "--cluster", str(profile), "--run-dir", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    return [line.split()[-1] for line in proc.stdout.splitlines()]


def wait_for(predicate, timeout: float = 300, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def state(slurm, job_id: str) -> str:
    return slurm.job(job_id).get("JobState", "UNKNOWN")


@pytest.mark.parametrize("profile, nodes", [("a40x32", "a40-[01-08]"), ("a800x4", "a800-01")])
def test_rendered_profiles_pass_sbatch_test_only(slurm, tmp_path, profile, nodes):
    proc = nvc1b("submit", str(ROOT / "stages" / "nvc1b_rgb.yaml"), "--cluster", str(ROOT / "cluster" / f"{profile}.yaml"),
                 "--run-dir", str(tmp_path), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    scripts = sorted((tmp_path / "slurm").glob("*.sbatch"))
    assert len(scripts) == 22
    for script in (scripts[0], scripts[-1]):
        check = subprocess.run(["sbatch", "--test-only", str(script)], capture_output=True, text=True)
        assert check.returncode == 0 and "to start at" in check.stderr and nodes in check.stderr, check.stderr


def test_chain_runs_stage_after_stage(slurm, manifest, tmp_path):
    schedule = write_schedule(tmp_path / "s.yaml", manifest, inter_steps=2)
    first, second = submit(schedule, write_profile(tmp_path / "p.yaml"), tmp_path / "run")
    assert f"afterok:{first}" in slurm.job(second)["Dependency"]
    wait_for(lambda: state(slurm, second) in ("COMPLETED", "FAILED", "CANCELLED"), what="the chain to finish")
    assert state(slurm, first) == "COMPLETED" and state(slurm, second) == "COMPLETED"
    assert (tmp_path / "run" / "exports" / "01-inter.safetensors").is_file()
    status = nvc1b("status", "--run-dir", str(tmp_path / "run"))
    assert status.returncode == 0 and status.stdout.count("COMPLETED") == 2 and status.stdout.count("done") == 2


def test_warning_signal_checkpoints_requeues_and_ends_with_the_same_weights(slurm, manifest, tmp_path):
    schedule = write_schedule(tmp_path / "s.yaml", manifest, inter_steps=10)
    reference = tmp_path / "reference"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NVC1B_PROGRESS": "0"}
    proc = subprocess.run([sys.executable, "-m", "nvc1b", "train", str(schedule), "--run-dir", str(reference)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]

    run_dir = tmp_path / "run"
    _, job = submit(schedule, write_profile(tmp_path / "p.yaml"), run_dir)

    def inter_running():
        status = run_dir / "status.json"
        return status.is_file() and json.loads(status.read_text()).get("stage") == 1 and \
            json.loads(status.read_text()).get("step", 0) >= 3

    wait_for(inter_running, what="stage 'inter' to be under way")
    subprocess.run(["scancel", "--signal=USR1", "--batch", job], check=True)
    wait_for(lambda: int(slurm.job(job).get("Restarts", "0")) >= 1, what="the job to be requeued")
    wait_for(lambda: state(slurm, job) in ("COMPLETED", "FAILED", "CANCELLED"), what="the requeued job to finish")
    assert state(slurm, job) == "COMPLETED"
    log = next((run_dir / "slurm").glob("*-inter-*.out")).read_text()
    assert "warning signal" in log and "requeueing" in log and "restart 1" in log
    ref = load_file(reference / "exports" / "01-inter.safetensors")
    got = load_file(run_dir / "exports" / "01-inter.safetensors")
    assert all(torch.equal(ref[k], got[k]) for k in ref)


def test_status_and_cancel(slurm, manifest, tmp_path):
    schedule = write_schedule(tmp_path / "s.yaml", manifest, inter_steps=400)
    run_dir = tmp_path / "run"
    first, second = submit(schedule, write_profile(tmp_path / "p.yaml"), run_dir)
    wait_for(lambda: state(slurm, first) == "COMPLETED" and state(slurm, second) == "RUNNING", what="stage 2 to run")
    status = nvc1b("status", "--run-dir", str(run_dir))
    assert "RUNNING" in status.stdout and "done" in status.stdout
    cancel = nvc1b("cancel", "--run-dir", str(run_dir))
    assert cancel.returncode == 0 and second in cancel.stdout
    wait_for(lambda: state(slurm, second) == "CANCELLED", what="the job to be cancelled")


def test_failed_first_stage_leaves_no_pending_job(slurm, manifest, tmp_path):
    schedule = write_schedule(tmp_path / "s.yaml", manifest, spynet_weights=str(tmp_path / "missing.pth"))
    first, second = submit(schedule, write_profile(tmp_path / "p.yaml"), tmp_path / "run")
    wait_for(lambda: state(slurm, first) == "FAILED", what="the first stage to fail")
    wait_for(lambda: state(slurm, second) != "PENDING", timeout=60, what="the dependent job to leave the queue")
    assert state(slurm, second) == "CANCELLED"
    log = next((tmp_path / "run" / "slurm").glob("*-intra-*.out")).read_text()
    assert "missing.pth: weights file not found" in log
