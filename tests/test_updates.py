"""Update granularity and optimizer hand-offs in real training processes (CPU, gloo, tiny preset): per-frame
updates give T−1 optimizer steps per clip, per-clip stays selectable; AdamW moments carry over between stages
that train the same parameters and restart when the trainable set changes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nvc1b.train.schedule import Schedule
from nvc1b.train.stage import stage_steps
from nvc1b.train.updates import ClipCursor, frames_per_step, steps_per_clip

PROBE = Path(__file__).parent / "helpers" / "probe_script.py"
HEAD = """\
preset: tiny
crop: 32
global_batch: 2
micro_batch: 1
checkpoint_every: 100
keep_checkpoints: 5
"""


def run_probe(tmp_path, body):
    schedule = tmp_path / "s.yaml"
    schedule.write_text(HEAD + body)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NVC1B_PROGRESS": "0"}
    env.pop("RANK", None)
    proc = subprocess.run([sys.executable, str(PROBE), str(schedule), "--run-dir", str(tmp_path / "run")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    run = tmp_path / "run"
    records = [json.loads(line) for line in (run / "logs" / "metrics.jsonl").read_text().splitlines()]
    return proc.stderr, records, {int(k): v for k, v in json.loads((run / "clips_read.json").read_text()).items()}


def adam_step_count(run_dir, tag):
    """AdamW's own step counter in a ZeRO checkpoint's optimizer state (rank 0)."""
    (path,) = (Path(run_dir) / "checkpoints" / tag).glob("*optim_states.pt")
    state = torch.load(path, map_location="cpu", weights_only=False)["optimizer_state_dict"]
    steps = {float(s["step"]) for s in state["base_optimizer_state"]["state"].values()}
    assert len(steps) == 1, steps
    return steps.pop()


def test_steps_per_clip_follows_the_reference_trainer():
    sched = Schedule.model_validate({"preset": "tiny", "stages": [
        {"name": "a", "frames": 3, "parts": "Recon", "loss": "recD", "lr": 1e-4, "epochs": 1},
        {"name": "b", "frames": 6, "parts": "Inter", "loss": "meRD", "lr": 1e-4, "epochs": 1},
        {"name": "c", "frames": 6, "parts": "All", "loss": "all_T", "lr": 1e-4, "epochs": 1},
        {"name": "d", "frames": 2, "parts": "Recon", "loss": "recRD", "lr": 1e-4, "epochs": 1},
        {"name": "e", "frames": 4, "parts": "Recon", "loss": "recD", "lr": 1e-4, "epochs": 1,
         "overrides": {"updates": "per_clip"}},
    ]})
    from nvc1b.train.schedule import effective

    got = [steps_per_clip(s, effective(sched, s)) for s in sched.stages]
    assert got == [2, 5, 1, 1, 1]
    assert [stage_steps(sched, i, 64) for i in range(5)] == [4, 10, 2, 2, 2]  # 64 clips = 2 clip-batches of 32
    assert frames_per_step(sched.stages[1], sched) == pytest.approx(6 / 5)
    cursor = ClipCursor(7, 5)
    assert (cursor.clip, cursor.frame, cursor.first) == (1, 3, False) and ClipCursor(3, 1).frame is None


@pytest.mark.slow
def test_per_frame_updates_and_adamw_moments_across_hand_offs(tmp_path):
    stages = """\
stages:
  - {name: inter, frames: 2, parts: Inter, loss: meRD, lr: 1.0e-3, steps: 2}
  - {name: frame, frames: 3, parts: Recon, loss: recD, lr: 1.0e-3, steps: 4}
  - {name: clip,  frames: 3, parts: Recon, loss: recD, lr: 1.0e-3, steps: 4, overrides: {updates: per_clip}}
  - {name: all1,  frames: 2, parts: All,   loss: all_T, lr: 1.0e-3, steps: 2}
  - {name: all2,  frames: 2, parts: All,   loss: all_T, lr: 1.0e-3, steps: 2}
"""
    log, records, read = run_probe(tmp_path, stages)
    by_stage = {name: [r for r in records if r["stage"] == name] for name in ("frame", "clip")}
    assert [r["stage_step"] for r in by_stage["frame"]] == [1, 2, 3, 4]
    assert all(r["applied"] for r in records)
    # 2 optimizer steps (T - 1) per clip-batch of 2 micro-batches: 4 steps read 2 clip-batches; per clip: 4
    assert read == {0: 4, 1: 4, 2: 8, 3: 4, 4: 4}
    assert "'frame': updates per P-frame, reference detached: 2 optimizer steps per clip-batch" in log
    assert "'clip': one optimizer step per clip-batch" in log
    # the P-frame alternates: frame 1 (against the I-frame), then frame 2 (against frame 1's reconstruction)
    d = [r["train/D"] for r in by_stage["frame"]]
    assert d[0] != d[1] and all(v > 0 for v in d)
    # the moments of stage 'frame' carried into 'clip' (same trainable set): AdamW has counted 4 + 4 steps
    assert "stage 2 ('clip'): AdamW moments carried from stage 1 ('frame')" in log
    assert adam_step_count(tmp_path / "run", "02-clip-step0000004") == 8
    # Inter → Recon changes the trainable set: the moments restart
    assert "stage 1 ('frame'): AdamW moments reset (the trainable set changes from Inter to Recon)" in log
    assert adam_step_count(tmp_path / "run", "01-frame-step0000004") == 4
    # two All stages train the same parameters: carried (2 + 2 steps); Recon → All changes the set: reset
    assert "stage 3 ('all1'): AdamW moments reset (the trainable set changes from Recon to All)" in log
    assert adam_step_count(tmp_path / "run", "03-all1-step0000002") == 2
    assert "stage 4 ('all2'): AdamW moments carried from stage 3 ('all1')" in log
    assert adam_step_count(tmp_path / "run", "04-all2-step0000002") == 4
