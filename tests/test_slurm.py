"""Submission, dependencies, preemption with requeue, idempotent stage jobs, two phases on two profiles, status
and cancel against a real SLURM controller started on this machine (skipped with the reason when SLURM cannot be
installed or run here)."""

import json
import os
import re
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file

from helpers.slurm_jobs import (
    ROOT, digests, job_log, nvc1b, state, submit, wait_for, write_profile, write_schedule,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    from nvc1b.data.builtin import ensure_builtin_dataset

    return ensure_builtin_dataset(tmp_path_factory.mktemp("data"), clips=16).train_manifest


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


def test_chain_runs_stage_after_stage_and_a_requeued_finished_stage_trains_nothing(slurm, manifest, tmp_path):
    schedule = write_schedule(tmp_path / "s.yaml", manifest, inter_steps=4, progress_every=2)
    run_dir = tmp_path / "run"
    first, second = submit(schedule, write_profile(tmp_path / "p.yaml"), run_dir)
    assert f"afterok:{first}" in slurm.job(second)["Dependency"]
    wait_for(lambda: state(slurm, second) in ("COMPLETED", "FAILED", "CANCELLED"), what="the chain to finish")
    assert state(slurm, first) == "COMPLETED" and state(slurm, second) == "COMPLETED"
    assert (run_dir / "exports" / "01-inter.safetensors").is_file()
    status = nvc1b("status", "--run-dir", str(run_dir))
    assert status.returncode == 0 and status.stdout.count("COMPLETED") == 2 and status.stdout.count("done") == 2
    # a progress line every 2 steps (the schedule's progress_every) in the job's output file
    assert re.findall(r"stage 1 inter step (\d+)/4: loss .* frames/s .* ETA stage", job_log(run_dir, "inter")) == \
        ["2", "4"]

    # the first stage's job run again (it used to go on and train the next stage): nothing trained, no export changed
    exports, metrics = digests(run_dir), (run_dir / "logs" / "metrics.jsonl").read_text()
    subprocess.run(["scontrol", "requeue", first], check=True)
    wait_for(lambda: int(slurm.job(first).get("Restarts", "0")) >= 1 and state(slurm, first) == "COMPLETED",
             what=f"requeued job {first} to finish")
    assert digests(run_dir) == exports and len(exports) == 2
    assert (run_dir / "logs" / "metrics.jsonl").read_text() == metrics
    assert "stage 0 ('intra') is already done" in job_log(run_dir, "intra").split("restart 1")[1]


def test_stage_killed_between_its_final_checkpoint_and_export_is_completed_by_its_rerun(slurm, manifest, tmp_path):
    schedule = write_schedule(tmp_path / "s.yaml", manifest, inter_steps=2)
    profile, run_dir = write_profile(tmp_path / "p.yaml"), tmp_path / "run"
    with pytest.MonkeyPatch.context() as mp:  # sbatch hands the environment to the jobs
        mp.setenv("NVC1B_FAULT", "before_export:0")
        first, second = submit(schedule, profile, run_dir)
    wait_for(lambda: state(slurm, first) == "FAILED", what="the intra stage to die before its export")
    wait_for(lambda: state(slurm, second) == "CANCELLED", timeout=60, what="its dependent job to be cancelled")
    assert json.loads((run_dir / "checkpoints" / "latest.json").read_text())["progress"]["stage_done"]
    assert not (run_dir / "exports").exists() or not list((run_dir / "exports").iterdir())

    (rerun,) = submit(schedule, profile, run_dir, "--stages", "intra")
    wait_for(lambda: state(slurm, rerun) in ("COMPLETED", "FAILED", "CANCELLED"), what="the rerun to finish")
    assert state(slurm, rerun) == "COMPLETED"
    log = job_log(run_dir, "intra", rerun)
    assert "finished but has no export: writing it from checkpoint 00-intra-step0000002" in log
    assert "stage 0 intra step" not in log  # no step trained again
    assert list(digests(run_dir)) == ["00-intra.safetensors"]


def test_two_phases_on_two_profiles_in_one_run_directory(slurm, manifest, tmp_path):
    schedule = write_schedule(tmp_path / "s.yaml", manifest, inter_steps=2)
    run_dir = tmp_path / "run"
    (first,) = submit(schedule, write_profile(tmp_path / "phase1.yaml", micro_batch=1), run_dir, "--stages", "intra")
    (second,) = submit(schedule, write_profile(tmp_path / "phase2.yaml", micro_batch=2), run_dir,
                       "--stages", "inter", "--after", "last")
    assert f"afterok:{first}" in slurm.job(second)["Dependency"]
    wait_for(lambda: state(slurm, second) in ("COMPLETED", "FAILED", "CANCELLED"), what="phase 2 to finish")
    assert state(slurm, first) == "COMPLETED" and state(slurm, second) == "COMPLETED"
    snapshots = sorted((run_dir / "slurm").glob("schedule-*.yaml"))
    assert [p.name for p in snapshots] == ["schedule-01-phase1.yaml", "schedule-02-phase2.yaml"]
    assert [yaml.safe_load(p.read_text())["micro_batch"] for p in snapshots] == [1, 2]
    # each job read its own snapshot: the global batch of 2 as 1 clip x 2 accumulation, then 2 clips x 1
    assert "2 clips/step = 1 ranks x 1 micro x 2 accumulation" in job_log(run_dir, "intra")
    assert "2 clips/step = 1 ranks x 2 micro x 1 accumulation" in job_log(run_dir, "inter")
    status = nvc1b("status", "--run-dir", str(run_dir))
    rows = [line.split() for line in status.stdout.splitlines() if line[:2] in ("00", "01")]
    assert [(r[1], r[2], r[3], r[4], r[6]) for r in rows] == [
        ("intra", "phase1", first, "COMPLETED", "done"), ("inter", "phase2", second, "COMPLETED", "done")]


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
    log = job_log(run_dir, "inter")
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
    log = job_log(tmp_path / "run", "intra")
    assert "missing.pth: weights file not found" in log
