"""The demo's report on a reduced run (an 8-clip built-in set, two one-step stages, two frames of a 64x64 window at
two rate points): the RD plot, the frame comparison and the training curves are files the report shows, the time
split is printed, and every number of the summary paragraph is computed from the results files."""

import json
import os
import re
import shutil
import subprocess
import sys

from nvc1b.data.builtin import ensure_builtin_dataset
from nvc1b.eval.bdrate import bd_psnr, bd_rate
from nvc1b.eval.curves import curve_from_summary
from nvc1b.eval.demo_report import stage_seconds

SCHEDULE = """\
preset: tiny
data: {{train: {manifest}, workers: 0}}
crop: 32
global_batch: 2
micro_batch: 2
zero_stage: 1
stages:
  - {{name: intra, frames: 1, parts: Intra, loss: intra, lr: 1.0e-3, steps: 2, warmup_steps: 1, decay: cosine}}
  - {{name: all,   frames: 2, parts: All,   loss: all_T, lr: 5.0e-4, steps: 1}}
"""
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?![\w])")


def _expected_numbers(run_dir, ffmpeg: bool) -> set[str]:
    """Every number the summary may cite, formatted as it cites them, computed here from the results files."""
    model = curve_from_summary(json.loads((run_dir / "eval" / "rgb" / "synthetic" / "dataset.json").read_text()))
    times = json.loads((run_dir / "report" / "timings.json").read_text())
    out = {f"{v:.3f}" for v in model.bpp} | {f"{v:.2f}" for v in model.psnr}
    out |= {f"{model.bpp[-1] / model.bpp[0]:.1f}", str(len(model.bpp)), f"{times['total'] / 60:.1f}",
            f"{sum(times['training'].values()) / 60:.1f}"}
    if ffmpeg:
        anchor = curve_from_summary(json.loads((run_dir / "anchors" / "x265" / "rgb" / "synthetic" / "dataset.json")
                                               .read_text()))
        out |= {f"{v:.2f}" for v in anchor.psnr} | {p[2:] for p in anchor.extra["point"]}
        out |= {f"{max(min(model.psnr), min(anchor.psnr)):.2f}", f"{min(max(model.psnr), max(anchor.psnr)):.2f}",
                f"{abs(bd_rate(anchor, model)):.1f}", f"{bd_psnr(anchor, model):+.2f}"}
        summary = json.loads((run_dir / "anchors" / "x265-ladder" / "rgb" / "synthetic" / "dataset.json").read_text())
        hull = curve_from_summary(summary)  # cited as "1/<largest scale>"
        out |= {"1", str(max(summary["scales"])), f"{min(hull.psnr):.2f}", f"{min(hull.bpp):.3f}",
                f"{max(min(model.psnr), min(hull.psnr)):.2f}", f"{min(max(model.psnr), max(hull.psnr)):.2f}",
                f"{abs(bd_rate(hull, model)):.1f}", f"{bd_psnr(hull, model):+.2f}"}
    return out


def test_demo_report_shows_its_figures_and_cites_only_results(tmp_path):
    dataset = ensure_builtin_dataset(tmp_path / "data", clips=8)
    schedule = tmp_path / "demo.yaml"
    schedule.write_text(SCHEDULE.format(manifest=dataset.train_manifest))
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "nvc1b", "demo", "--run-dir", str(run_dir), "--schedule", str(schedule),
               "--data-root", str(dataset.root), "--frames", "2", "--crop", "64x64", "--q-indexes", "0,3",
               "--qps", "37,51", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NVC1B_PROGRESS": "0"}
    env.pop("RANK", None)
    done = subprocess.run(command, check=False, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    ffmpeg = bool(shutil.which("ffmpeg") and shutil.which("ffprobe"))

    report = run_dir / "report"
    text = (report / "report.md").read_text()
    for png in ("rd_rgb_synthetic.png", "frames.png", "training_curves.png"):
        assert f"]({png})" in text and (report / png).stat().st_size > 10_000, png
    assert text.index("](frames.png)") < text.index("## RGB test sets")  # at a glance: before the tables

    # the time split: every stage that ran, evaluation, anchors; printed at the end and kept in timings.json
    times = json.loads((report / "timings.json").read_text())
    assert list(times["training"]) == ["intra", "all"] and all(s > 0 for s in times["training"].values())
    assert times["evaluation"] > 0 and (times["anchors"] > 0) == ffmpeg
    parts = sum(times["training"].values()) + sum(times[k] for k in ("evaluation", "channel_share", "anchors",
                                                                      "report", "other"))
    assert abs(parts - times["total"]) < 1e-6
    assert re.search(r"training: intra +\d+\.\d\n\s+training: all +\d+\.\d\n\s+evaluation", done.stdout)
    assert re.search(r"total +\d+\.\d", done.stdout)

    # the reduced schedule's P-frame clips have 2 frames: no feature adaptor is trained, and both logs say so
    untrained = "feature adaptors 0 (P-frames 2, 4, 6, …), 1 (P-frames 5, 9, 13, …) and 2 (P-frames 3, 7, 11, …)"
    assert "In this schedule the longest clip of a stage that trains temporal context mining has 2 frames" in text
    assert untrained in text and "this schedule: the longest clip" in done.stdout + done.stderr

    summary = next(line for line in text.splitlines() if line.startswith("**What the numbers mean.**"))
    cited = set(NUMBER.findall(summary))
    assert cited and cited <= _expected_numbers(run_dir, ffmpeg), cited - _expected_numbers(run_dir, ffmpeg)
    if ffmpeg:
        assert "x265 at QP 37–51" in summary
        # the ladder: 1/2 and 1/4 of the 64x64 window (1/8 would code 8 pixels a side and is left out)
        ladder = json.loads((run_dir / "anchors" / "x265-ladder" / "rgb" / "synthetic" / "dataset.json").read_text())
        assert ladder["scales"] == [1, 2, 4] and ladder["label"] == "x265 ladder" and ladder["curve"] == "hull"
        assert "down to 1/4 of each side" in summary and "](rd_rgb_synthetic.png)" in text
        assert "### BD-rate (%) against x265 ladder" in text


def test_stage_seconds_split_the_training_at_each_stage_s_last_step(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    rows = [(1, "old", 50.0), (1, "intra", 101.0), (2, "intra", 103.5), (3, "p", 110.0), (4, "p", 112.0)]
    metrics.write_text("\n".join(json.dumps({"step": s, "stage": n, "time": t}) for s, n, t in rows) + "\n")
    assert stage_seconds(metrics, since=100.0) == {"intra": 3.5, "p": 8.5}
    assert stage_seconds(tmp_path / "absent.jsonl", since=0.0) == {}
