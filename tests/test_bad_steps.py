"""Bad-step decisions from the step's global loss: robust at micro-batch 1, identical on every rank.

The 8-rank run is the paper's setting scaled down: micro-batch 1 per rank, λ drawn per sample from the four anchors,
clips from static and smooth to fast and noisy, every rank a real process over gloo with one thread."""

import json
import math
import os
import random
import socket
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from nvc1b.train.schedule import Stability
from nvc1b.train.stability import SpikeDetector, injected_nan

HELPER = Path(__file__).parent / "helpers" / "train_script.py"
RANKS, STEPS, NAN_STEP, NAN_RANK = 8, 42, 41, 3
SCHEDULE = f"""\
preset: tiny
crop: 32
global_batch: 8
micro_batch: 1
checkpoint_every: 1000
stability: {{window: 10}}
stages:
  - {{name: all, frames: 2, parts: All, loss: all_T, lr: 1.0e-4, steps: {STEPS}}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def micro_batch_one_losses(n: int, ranks: int, seed: int = 0) -> list[float]:
    """Step losses as 32 ranks × micro-batch 1 give them: per-sample λ over the anchors times a lognormal clip
    difficulty, averaged over the ranks."""
    rng = random.Random(seed)
    steps = []
    for _ in range(n):
        samples = [rng.choice((85, 170, 380, 840)) * 0.01 * math.exp(rng.gauss(0, 1.0)) + 0.5 for _ in range(ranks)]
        steps.append(sum(samples) / ranks)
    return steps


def feed(detector: SpikeDetector, losses: list[float]) -> int:
    bad = 0
    for loss in losses:
        flagged = detector.is_bad(loss)
        bad += flagged
        detector.record(not flagged, loss)
    return bad


def test_heavy_tailed_step_losses_are_not_spikes_but_a_real_spike_is():
    detector = SpikeDetector(Stability())
    assert feed(detector, micro_batch_one_losses(2000, ranks=32)) == 0
    assert feed(SpikeDetector(Stability(window=10)), micro_batch_one_losses(2000, ranks=8, seed=1)) == 0
    assert detector.is_bad(20 * statistics.median(detector.recent))  # a twentyfold step loss is a spike
    assert detector.is_bad(float("nan")) and detector.is_bad(float("inf"))


def test_spikes_off_skips_only_non_finite_steps():
    detector = SpikeDetector(Stability(window=3, spikes=False))
    feed(detector, [1.0, 1.0, 1.0])
    assert not detector.is_bad(1e6) and detector.is_bad(float("nan"))


def test_threshold_ignores_a_few_heavy_steps_in_the_window():
    detector = SpikeDetector(Stability(window=5, spike_factor=2.0, spike_mads=3.0))
    feed(detector, [1.0, 1.1, 0.9, 1.0, 100.0])  # one outlier in the window barely moves median and MAD
    assert detector.threshold() == pytest.approx(2.0)


def test_injected_nan_on_one_rank(monkeypatch):
    monkeypatch.setenv("NVC1B_INJECT_NAN", "all:41@3")
    assert injected_nan("all", 41, 0, rank=3)
    assert not injected_nan("all", 41, 0, rank=2) and not injected_nan("all", 40, 0, rank=3)
    monkeypatch.setenv("NVC1B_INJECT_NAN", "recon:3-4")
    assert injected_nan("recon", 4, 0, rank=5) and not injected_nan("recon", 4, 1, rank=5)


@pytest.mark.slow
def test_eight_ranks_micro_batch_one_skip_nothing_then_skip_a_one_rank_nan_everywhere(tmp_path):
    schedule = tmp_path / "eight.yaml"
    schedule.write_text(SCHEDULE)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NVC1B_PROGRESS": "0", "NVC1B_INJECT_NAN": f"all:{NAN_STEP}@{NAN_RANK}"}
    env.pop("RANK", None)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={RANKS}", f"--master_port={free_port()}",
         str(HELPER), str(schedule), "--run-dir", str(tmp_path / "run"), "--clips", "mixed",
         "--rank-report", str(tmp_path / "ranks")],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    records = [json.loads(line) for line in (tmp_path / "run" / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    assert [r["step"] for r in records if not r["applied"]] == [NAN_STEP]  # none of the first 40, then the NaN
    assert "8 clips/step = 8 ranks x 1 micro x 1 accumulation" in proc.stderr + proc.stdout
    reports = [json.loads((tmp_path / "ranks" / f"rank{r}.json").read_text()) for r in range(RANKS)]
    assert [r["skipped"] for r in reports] == [1] * RANKS  # DeepSpeed skipped that one step on every rank
    assert len({r["sha256"] for r in reports}) == 1  # and every rank holds the same weights afterwards
