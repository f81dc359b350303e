"""A stage trained over two hosts through the real sbatch template: two slurmd in two network namespaces of this
machine (nodes n1 and n2, each with its own address), one torchrun per node meeting at n1 (c10d rendezvous), gloo
between the ranks; the job is sent the warning signal mid-stage, requeues, resumes and must end with the weights of
an uninterrupted 2-rank run on one node."""

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from helpers.slurm_jobs import job_log, state, submit, wait_for, write_profile, write_schedule

pytestmark = pytest.mark.slow


def test_two_node_stage_requeues_and_ends_with_the_weights_of_one_node(slurm_two_nodes, tmp_path):
    from nvc1b.data.builtin import ensure_builtin_dataset

    manifest = ensure_builtin_dataset(tmp_path / "data", clips=16).train_manifest
    schedule = write_schedule(tmp_path / "s.yaml", manifest, inter_steps=8, micro_batch=1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reference = tmp_path / "reference"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
         "-m", "nvc1b", "train", str(schedule), "--run-dir", str(reference)],
        env={**os.environ, "OMP_NUM_THREADS": "1", "NVC1B_PROGRESS": "0"}, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]

    run_dir = tmp_path / "run"
    (run_dir / "exports").mkdir(parents=True)  # the intra stage as the reference trained it: only 'inter' is submitted
    shutil.copy(reference / "exports" / "00-intra.safetensors", run_dir / "exports")
    profile = write_profile(tmp_path / "two.yaml", nodes=2, procs_per_node=1, cpus_per_task=1)
    (job,) = submit(schedule, profile, run_dir, "--stages", "inter")

    def inter_under_way():
        path = run_dir / "status.json"
        status = json.loads(path.read_text()) if path.is_file() else {}
        return status.get("stage") == 1 and status.get("step", 0) >= 3

    wait_for(inter_under_way, timeout=600, what="stage 'inter' to be under way on both nodes")
    subprocess.run(["scancel", "--signal=USR1", "--batch", job], check=True)
    wait_for(lambda: int(slurm_two_nodes.job(job).get("Restarts", "0")) >= 1, what="the job to be requeued")
    wait_for(lambda: state(slurm_two_nodes, job) in ("COMPLETED", "FAILED", "CANCELLED"), timeout=600,
             what="the requeued job to finish")
    log = job_log(run_dir, "inter")
    assert state(slurm_two_nodes, job) == "COMPLETED", log[-3000:]
    assert f"job {job} (restart 0) on n[1-2]" in log and f"job {job} (restart 1) on n[1-2]" in log
    assert "warning signal" in log and "requeueing" in log
    assert "2 clips/step = 2 ranks x 1 micro x 1 accumulation" in log
    ref = load_file(reference / "exports" / "01-inter.safetensors")
    got = load_file(run_dir / "exports" / "01-inter.safetensors")
    assert ref.keys() == got.keys() and all(torch.equal(ref[k], got[k]) for k in ref)
