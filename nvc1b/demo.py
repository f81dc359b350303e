"""``nvc1b demo``: the whole pipeline on one CPU box in minutes — the built-in data, the tiny model trained with
``stages/demo.yaml`` (resumed if the run directory has checkpoints, skipped once finished), its final export
evaluated through real bitstreams on the synthetic test clips, x265 anchors when FFmpeg is installed, and a report.

To fit in a few minutes on 2 CPU cores the evaluation codes the first ``DEMO_FRAMES`` frames of each of the seven
synthetic sequences (one I-frame, then P-frames: the YAML's intra period of 32 is longer) in their centred
``DEMO_CROP`` window, at the four rate anchors; the paper's protocol is 96 frames of whole sequences
(``nvc1b eval``, whose defaults follow the test set's YAML).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .coding.runtime import load_coding_model
from .data.builtin import ensure_builtin_dataset
from .data.testsets import load_test_set
from .errors import NvcError
from .eval.anchors import MIN_SCALED_SIDE, AnchorError, find_ffmpeg, make_anchors, scale_fits
from .eval.bdrate import bd_psnr, bd_rate
from .eval.channels import CHANNEL_SHARE_JSON, ChannelShare, channel_bitrate_share
from .eval.demo_figures import plot_training_curves
from .eval.demo_report import (
    CURVES_PNG, FRAMES_PNG, FULL_SIZE, TIMINGS_JSON, TimeSplit, frame_comparison, stage_seconds, summary_numbers,
    summary_paragraph,
)
from .eval.evaluate import Q_INDEXES, evaluate
from .eval.report import write_report
from .eval.runner import EvalResult
from .model.export import resolve_weights

log = logging.getLogger(__name__)

DEMO_SCHEDULE = Path(__file__).resolve().parents[1] / "stages" / "demo.yaml"
DEMO_FRAMES = 8
DEMO_CROP = (128, 128)
"""Centred window of the 448x256 synthetic frames, the demo schedule's training crop: the evaluation is most of
the demo's time (its cost grows with the pixels), and five-scale MS-SSIM needs 161 px, so it is left out here."""
SHARE_FRAMES = 4
"""Frames per sequence of the per-channel bitrate share (an I-frame and three P-frames: the share is a mean over
P-frames, and this pass costs about as much as coding)."""
DEMO_QPS = (22, 27, 32, 37, 42, 47, 51)
"""x265 QPs: the common test conditions' four, then on to x265's coarsest, whose PSNR on the demo clips
(about 28 dB at QP 51) reaches down into the range of a model trained for minutes, so that the BD-rate has a
common PSNR range to integrate over (``nvc1b anchors`` keeps the paper's 22–37)."""
ANCHOR_JOBS = 2
"""FFmpeg runs at a time for the demo's anchors: the windows are small, so each run is mostly process start-up and
two at once take about half the time on the 2 cores the demo is sized for."""
DEMO_LADDER_SCALES = (1, 2, 4, 8)
DEMO_LADDER_QPS = (37, 51)
"""x265's resolution ladder: each window also coded at 1/2, 1/4 and 1/8 of each side (upscaled back), at QP 37 and
51; its convex hull reaches down to about 23.5 dB on the demo clips, where QP 51 at full size stops at about
29 dB (these smooth clips are easy for x265). Scales that would code fewer than 16 pixels a side are left out."""


@dataclass
class DemoResult:
    report: Path
    evaluation: EvalResult
    anchors: EvalResult | None
    """x265 results, None without FFmpeg."""
    bd_rate_vs_x265: float | None
    """BD-rate (%) of the model against x265 on the synthetic clips (NaN: no common PSNR range)."""
    bd_psnr_vs_x265: float | None
    """BD-PSNR (dB) of the model against x265 (NaN: no common rate range)."""
    ladder: EvalResult | None
    """x265's resolution ladder (its curve is the convex hull), None without FFmpeg or with no scale but 1."""
    bd_rate_vs_ladder: float | None
    """BD-rate (%) of the model against the ladder's hull (NaN: no common PSNR range)."""
    bd_psnr_vs_ladder: float | None
    """BD-PSNR (dB) of the model against the ladder's hull (NaN: no common rate range)."""
    training: str
    """What happened to training: 'trained', 'resumed', 'already finished', 'stopped at --max-steps'."""
    seconds: float
    times: TimeSplit
    """Where the seconds went."""


def train_demo(run_dir: Path, schedule: str | Path = DEMO_SCHEDULE, max_steps: int | None = None) -> str:
    """Train (or resume, or skip) the demo schedule in ``run_dir``; returns what was done."""
    from .train.checkpointing import read_latest
    from .train.schedule import load_schedule
    from .train.trainer import RunOptions, train

    status_path = run_dir / "status.json"
    if status_path.is_file() and json.loads(status_path.read_text()).get("state") == "finished":
        log.info("%s: training finished in an earlier run; evaluating its final export", run_dir)
        return "already finished"
    resume = read_latest(run_dir) is not None
    result = train(load_schedule(schedule), RunOptions(run_dir, resume=resume, max_steps=max_steps))
    if result.stopped and result.stop_reason != "max-steps":
        raise NvcError(f"{run_dir}: training stopped on request ({result.stop_reason}); run nvc1b demo again to resume")
    if result.stopped:
        return "stopped at --max-steps"
    return "resumed" if resume else "trained"


def _cached_share(path: Path, q_indexes: Sequence[float], frames: int) -> ChannelShare | None:
    if not path.is_file():
        return None
    share = ChannelShare.load(path)
    return share if share.q_indexes == [float(q) for q in q_indexes] and share.frames == frames else None


def run_demo(run_dir: str | Path, schedule: str | Path = DEMO_SCHEDULE, max_steps: int | None = None,
             frames: int = DEMO_FRAMES, crop: tuple[int, int] | None = DEMO_CROP,
             q_indexes: Sequence[float] = Q_INDEXES, qps: Sequence[int] = DEMO_QPS,
             data_root: str | Path | None = None, progress: bool = True,
             ladder_scales: Sequence[int] = DEMO_LADDER_SCALES, ladder_qps: Sequence[int] = DEMO_LADDER_QPS) -> DemoResult:
    """Train, evaluate, make anchors and write ``RUN_DIR/report/report.md``; every step reuses finished work."""
    start = time.perf_counter()
    times = TimeSplit()
    run_dir = Path(run_dir)
    dataset = ensure_builtin_dataset(data_root)
    since = time.time()
    t = time.perf_counter()
    training = train_demo(run_dir, schedule, max_steps)
    trained = time.perf_counter() - t
    times.training = stage_seconds(run_dir / "logs" / "metrics.jsonl", since)
    if times.training:  # the last stage's checkpoint and export come after its last logged step
        last = list(times.training)[-1]
        times.training[last] += max(0.0, trained - sum(times.training.values()))
    try:
        export = resolve_weights(run_dir)
    except NvcError as exc:
        if training != "stopped at --max-steps":
            raise
        raise NvcError(f"{exc}: --max-steps {max_steps} ended training before its first stage did") from None
    codec = load_coding_model(export)
    test_set = load_test_set(dataset.test_set)
    t = time.perf_counter()
    evaluation = evaluate(codec, test_set, run_dir / "eval", q_indexes, frames, None, "rgb", crop, progress=progress)
    times.evaluation = time.perf_counter() - t

    anchors = ladder = None
    t = time.perf_counter()
    try:
        find_ffmpeg("x265")
    except AnchorError as exc:
        log.warning("no x265 anchors: %s", exc)
        anchor_note = f"No x265 anchors: {exc}."
    else:
        anchors = make_anchors("x265", test_set, run_dir / "anchors" / "x265", qps, frames, None, "rgb", crop,
                               progress=progress, jobs=ANCHOR_JOBS)
        anchor_note = (f"Anchor: x265 through FFmpeg (preset medium, low delay without B-frames, the same frames and "
                       f"intra period, QP {', '.join(str(q) for q in qps)}). The demo's QPs go past the common test "
                       "conditions' 22–37 down to x265's coarsest, 51, whose PSNR reaches into the demo model's "
                       "range, so that the BD-rate has a common PSNR range to integrate over; `nvc1b anchors` "
                       "keeps 22–37.")
        scales = _fitting_scales(ladder_scales, test_set, crop)
        if len(scales) > 1:
            ladder = make_anchors("x265", test_set, run_dir / "anchors" / "x265-ladder", ladder_qps, frames, None,
                                  "rgb", crop, progress=progress, scales=scales, jobs=ANCHOR_JOBS)
            anchor_note += (f" The x265 ladder codes the same windows at {', '.join(_fraction(s) for s in scales)} "
                            f"of each side (Lanczos down, and up again before measuring), at QP "
                            f"{', '.join(str(q) for q in ladder_qps)}; its curve is the convex hull of those points, "
                            "the best x265 does at each rate by choosing its resolution (as AOM's adaptive-streaming "
                            "test conditions do). It reaches below QP 51 at full size, which these smooth clips "
                            "leave at a high PSNR.")
    times.anchors = time.perf_counter() - t

    t = time.perf_counter()
    share_path = evaluation.folder / CHANNEL_SHARE_JSON
    share_frames = min(frames, SHARE_FRAMES) if frames > 1 else frames
    share = _cached_share(share_path, q_indexes, share_frames)
    if share is None:
        share = channel_bitrate_share(codec, test_set, q_indexes, share_frames, None, "rgb", crop, progress=progress)
        share.save(share_path)
    times.channel_share = time.perf_counter() - t

    bd = bd_rate(anchors.curve, evaluation.curve) if anchors else None
    bd_db = bd_psnr(anchors.curve, evaluation.curve) if anchors else None
    ladder_bd = bd_rate(ladder.curve, evaluation.curve) if ladder else None
    ladder_bd_db = bd_psnr(ladder.curve, evaluation.curve) if ladder else None
    window = f"the centred {crop[0]}x{crop[1]} window" if crop else "whole frames"
    description = (
        f"The demo: `{evaluation.summary['label']}` ({export.name}; training: {training}) coded through real "
        f"bitstreams on the built-in synthetic test clips ({len(test_set.sequences)} sequences: pan, zoom, rotation, "
        f"fade, blur, sharpen, occlusion), the first {frames} frames of each in {window}, intra period "
        f"{evaluation.summary['intra_period']}, q ∈ {{{', '.join(f'{q:g}' for q in q_indexes)}}}, RGB. "
        "This is a CPU-sized look at the pipeline; the paper's protocol is 96 whole frames of HEVC, UVG and "
        "MCL-JCV (`nvc1b eval --dataset data/hevc_b.yaml ...`)."
    )
    from .train.clip import schedule_adaptor_note
    from .train.schedule import load_schedule

    adaptors = schedule_adaptor_note(load_schedule(schedule))
    if adaptors:
        description += f" In this schedule {adaptors}."
    if bd is not None:
        anchor_note += (f" Against x265 the model has a BD-rate of {format_bd(bd, '%', 'PSNR')} and a BD-PSNR of "
                        f"{format_bd(bd_db, ' dB', 'rate')}.")
    if ladder_bd is not None:
        anchor_note += (f" Against the x265 ladder: a BD-rate of {format_bd(ladder_bd, '%', 'PSNR')} and a BD-PSNR of "
                        f"{format_bd(ladder_bd_db, ' dB', 'rate')}.")

    t = time.perf_counter()
    out = run_dir / "report"
    anchor_folder = anchors.folder if anchors else None
    frames_png = frame_comparison(codec, test_set, evaluation.folder, anchor_folder, out / FRAMES_PNG, frames, crop,
                                  max(q_indexes))
    figures = [f"![decoded frames next to the originals]({frames_png.name})", ""]
    metrics = run_dir / "logs" / "metrics.jsonl"
    if metrics.is_file():
        curves_png = plot_training_curves(metrics, out / CURVES_PNG)
        figures = [*figures, f"![training curves per stage]({curves_png.name})", ""]
    times.report = time.perf_counter() - t
    times.other += time.perf_counter() - start - times.total
    times.save(out / TIMINGS_JSON)
    numbers = summary_numbers(evaluation.folder, anchor_folder, out / TIMINGS_JSON, ladder.folder if ladder else None)
    rd_png = f"rd_rgb_{evaluation.summary['dataset']}.png"  # drawn by write_report below
    notes = [summary_paragraph(numbers, codec.preset), "", FULL_SIZE, "", f"![RD curves]({rd_png})", "", *figures,
             "Where this run's time went (wall seconds; work reused from an earlier run costs nothing):", "",
             *times.table(), "", description, "", anchor_note]
    anchor_dirs = [run_dir / "anchors" / "x265"] if anchors else []
    anchor_dirs += [run_dir / "anchors" / "x265-ladder"] if ladder else []
    report = write_report(out, [run_dir / "eval"], anchor_dirs, [share], title="nvc1b demo", notes=notes)
    return DemoResult(report, evaluation, anchors, bd, bd_db, ladder, ladder_bd, ladder_bd_db, training,
                      time.perf_counter() - start, times)


def _fitting_scales(scales: Sequence[int], test_set, crop: tuple[int, int] | None) -> list[int]:
    """The ladder's scales whose downscaled frames keep at least ``MIN_SCALED_SIDE`` pixels a side everywhere."""
    sizes = [crop or (seq.width, seq.height) for seq in test_set.sequences]
    fitting = [int(s) for s in scales if all(scale_fits(w, h, int(s)) for w, h in sizes)]
    if len(fitting) < len(scales):
        log.info("x265 ladder: scales %s leave fewer than %d pixels a side; left out",
                 sorted(set(map(int, scales)) - set(fitting)), MIN_SCALED_SIDE)
    return sorted(set(fitting))


def _fraction(scale: int) -> str:
    return "full size" if scale == 1 else f"1/{scale}"


def format_bd(value: float, unit: str, shared: str) -> str:
    """'-12.3%', '-1.25 dB' or 'n/a (no common PSNR range)'."""
    if math.isnan(value):
        return f"n/a (no common {shared} range)"
    return f"{value:.1f}{unit}" if unit == "%" else f"{value:.2f}{unit}"
