"""``nvc1b demo`` end to end in a real process, shrunk: an 8-clip built-in set, a two-stage one-step schedule, two
frames of a 64x64 window at two rate points. The second run skips the finished training and reuses every point."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from nvc1b.data.builtin import ensure_builtin_dataset

SCHEDULE = """\
preset: tiny
data: {{train: {manifest}, workers: 0}}
crop: 32
global_batch: 2
micro_batch: 2
zero_stage: 1
stages:
  - {{name: intra, frames: 1, parts: Intra, loss: intra, lr: 1.0e-3, steps: 1}}
  - {{name: all,   frames: 2, parts: All,   loss: all_T, lr: 5.0e-4, steps: 1}}
"""
pytestmark = pytest.mark.slow


def run_demo(run_dir, schedule, data_root):
    command = [sys.executable, "-m", "nvc1b", "demo", "--run-dir", str(run_dir), "--schedule", str(schedule),
               "--data-root", str(data_root), "--frames", "2", "--crop", "64x64", "--q-indexes", "0,3",
               "--qps", "37,51", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NVC1B_PROGRESS": "0"}
    env.pop("RANK", None)
    done = subprocess.run(command, check=False, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_demo_trains_evaluates_and_reports_then_reuses(tmp_path):
    dataset = ensure_builtin_dataset(tmp_path / "data", clips=8)
    schedule = tmp_path / "demo.yaml"
    schedule.write_text(SCHEDULE.format(manifest=dataset.train_manifest))
    run_dir = tmp_path / "run"

    out = run_demo(run_dir, schedule, dataset.root)
    report = run_dir / "report" / "report.md"
    assert f"report: {report}" in out and "training: trained" in out
    summary = json.loads((run_dir / "eval" / "rgb" / "synthetic" / "dataset.json").read_text())
    assert summary["frames"] == 2 and summary["crop"] == [64, 64] and len(summary["sequences"]) == 7
    assert sorted(p["point"] for p in summary["points"]) == ["q0", "q3"]
    text = report.read_text()
    assert "rd_rgb_synthetic.png" in text and (run_dir / "report" / "rd_rgb_synthetic.png").is_file()
    assert "channel_share.png" in text and (run_dir / "report" / "channel_share.png").is_file()
    if shutil.which("ffmpeg") and shutil.which("ffprobe"):
        assert "BD-rate (%) against x265" in text and re.search(r"against x265: BD-rate (n/a|-?\d+\.\d%)", out)
    else:
        assert "No x265 anchors" in text and "no x265 anchors" in out

    again = run_demo(run_dir, schedule, dataset.root)
    assert "training: already finished" in again and "0 points coded, 14 reused" in again
