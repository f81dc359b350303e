"""Stage jobs as SLURM runs them, in real processes without SLURM: a rerun of a finished stage trains nothing, a
crash between a stage's final checkpoint and its export is completed by the rerun, the run's global step goes on
across stage jobs, and a log that is not a terminal gets a progress line every N steps."""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

HELPER = Path(__file__).parent / "helpers" / "train_script.py"
SCHEDULE = """\
preset: tiny
crop: 32
global_batch: 2
micro_batch: 2
zero_stage: 1
checkpoint_every: 100
progress_every: 2
progress_seconds: 3600
stages:
  - {name: intra, frames: 1, parts: Intra, loss: intra, lr: 1.0e-3, steps: 2}
  - {name: inter, frames: 2, parts: Inter, loss: meRD,  lr: 1.0e-3, steps: 5}
"""
pytestmark = pytest.mark.slow


def stage_job(schedule, run_dir, stage, check=True, **env):
    """One stage job: `train SCHEDULE --run-dir R --stage S --resume`, stderr to a file as in a SLURM job."""
    err = Path(run_dir).with_suffix(f".{stage}.err")
    with open(err, "a") as f:
        proc = subprocess.run([sys.executable, str(HELPER), str(schedule), "--run-dir", str(run_dir), "--stage", stage,
                               "--resume"], env={**os.environ, "OMP_NUM_THREADS": "1", **env},
                              stdout=subprocess.DEVNULL, stderr=f, timeout=600)
    if check:
        assert proc.returncode == 0, err.read_text()[-3000:]
    return proc, err.read_text()


def digests(run_dir):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((Path(run_dir) / "exports").glob("*"))}


@pytest.fixture(scope="module")
def schedule(tmp_path_factory):
    path = tmp_path_factory.mktemp("sched") / "s.yaml"
    path.write_text(SCHEDULE)
    return path


@pytest.fixture(scope="module")
def intra_done(schedule, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run") / "r"
    stage_job(schedule, run_dir, "intra")
    return run_dir


def test_rerun_of_a_finished_stage_trains_nothing(schedule, intra_done):
    before = digests(intra_done)
    metrics = (intra_done / "logs" / "metrics.jsonl").read_text()
    _, err = stage_job(schedule, intra_done, "intra")
    assert "stage 0 ('intra') is already done" in err
    assert digests(intra_done) == before and list(before) == ["00-intra.safetensors"]
    assert (intra_done / "logs" / "metrics.jsonl").read_text() == metrics  # not one step trained


def test_crash_between_final_checkpoint_and_export_is_completed_by_the_rerun(schedule, intra_done, tmp_path):
    run_dir = tmp_path / "r"
    proc, _ = stage_job(schedule, run_dir, "intra", check=False, NVC1B_FAULT="before_export:0")
    assert proc.returncode == 9 and not (run_dir / "exports" / "00-intra.safetensors").exists()
    assert json.loads((run_dir / "checkpoints" / "latest.json").read_text())["progress"]["stage_done"]
    _, err = stage_job(schedule, run_dir, "intra")
    assert "finished but has no export: writing it from checkpoint" in err
    got, want = (load_file(d / "exports" / "00-intra.safetensors") for d in (run_dir, intra_done))
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)  # as if not interrupted


def test_next_stage_job_continues_the_global_step_and_logs_progress_lines(schedule, intra_done, tmp_path):
    run_dir = tmp_path / "r"
    subprocess.run(["cp", "-r", str(intra_done), str(run_dir)], check=True)
    _, err = stage_job(schedule, run_dir, "inter")
    steps = [json.loads(line)["step"] for line in (run_dir / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6, 7]  # intra's 2 steps, then inter's 5 at global steps 3..7
    lines = re.findall(r"stage 1 inter step (\d+)/5: loss \S+ psnr \S+ bpp \S+ lr \S+ \| \S+ frames/s \S+ GB \| "
                       r"ETA stage \S+, schedule \S+", err)
    assert lines == ["2", "4", "5"]  # every 2 steps (progress_every) and the stage's last step
