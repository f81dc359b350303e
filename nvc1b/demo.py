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
from .eval.anchors import AnchorError, find_ffmpeg, make_anchors
from .eval.bdrate import bd_psnr, bd_rate
from .eval.channels import CHANNEL_SHARE_JSON, ChannelShare, channel_bitrate_share
from .eval.evaluate import Q_INDEXES, evaluate
from .eval.report import write_report
from .eval.runner import EvalResult
from .model.export import resolve_weights

log = logging.getLogger(__name__)

DEMO_SCHEDULE = Path(__file__).resolve().parents[1] / "stages" / "demo.yaml"
DEMO_FRAMES = 8
DEMO_CROP = (192, 192)
"""Centred window of the 448x256 synthetic frames: large enough for five-scale MS-SSIM (161 px)."""
DEMO_QPS = (22, 27, 32, 37)
"""x265 QPs of the common test conditions; on the demo clips their rates span the tiny model's."""


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
    training: str
    """What happened to training: 'trained', 'resumed', 'already finished', 'stopped at --max-steps'."""
    seconds: float


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
             data_root: str | Path | None = None, progress: bool = True) -> DemoResult:
    """Train, evaluate, make anchors and write ``RUN_DIR/report/report.md``; every step reuses finished work."""
    start = time.perf_counter()
    run_dir = Path(run_dir)
    dataset = ensure_builtin_dataset(data_root)
    training = train_demo(run_dir, schedule, max_steps)
    try:
        export = resolve_weights(run_dir)
    except NvcError as exc:
        if training != "stopped at --max-steps":
            raise
        raise NvcError(f"{exc}: --max-steps {max_steps} ended training before its first stage did") from None
    codec = load_coding_model(export)
    test_set = load_test_set(dataset.test_set)
    evaluation = evaluate(codec, test_set, run_dir / "eval", q_indexes, frames, None, "rgb", crop, progress=progress)

    anchors = None
    try:
        find_ffmpeg("x265")
    except AnchorError as exc:
        log.warning("no x265 anchors: %s", exc)
        anchor_note = f"No x265 anchors: {exc}."
    else:
        anchors = make_anchors("x265", test_set, run_dir / "anchors" / "x265", qps, frames, None, "rgb", crop,
                               progress=progress)
        anchor_note = (f"Anchor: x265 through FFmpeg (preset medium, low delay without B-frames, the same frames and "
                       f"intra period, QP {', '.join(str(q) for q in qps)}).")

    share_path = evaluation.folder / CHANNEL_SHARE_JSON
    share = _cached_share(share_path, q_indexes, frames)
    if share is None:
        share = channel_bitrate_share(codec, test_set, q_indexes, frames, None, "rgb", crop, progress=progress)
        share.save(share_path)

    bd = bd_rate(anchors.curve, evaluation.curve) if anchors else None
    bd_db = bd_psnr(anchors.curve, evaluation.curve) if anchors else None
    window = f"the centred {crop[0]}x{crop[1]} window" if crop else "whole frames"
    description = (
        f"The demo: `{evaluation.summary['label']}` ({export.name}; training: {training}) coded through real "
        f"bitstreams on the built-in synthetic test clips ({len(test_set.sequences)} sequences: pan, zoom, rotation, "
        f"fade, blur, sharpen, occlusion), the first {frames} frames of each in {window}, intra period "
        f"{evaluation.summary['intra_period']}, q ∈ {{{', '.join(f'{q:g}' for q in q_indexes)}}}, RGB. "
        "This is a CPU-sized look at the pipeline; the paper's protocol is 96 whole frames of HEVC, UVG and "
        "MCL-JCV (`nvc1b eval --dataset data/hevc_b.yaml ...`). The model is the `tiny` preset after the short "
        "demo schedule (a few hundred optimizer steps on a CPU): its numbers show that the pipeline works, not "
        "what the architecture can do."
    )
    if bd is not None:
        anchor_note += (f" Against x265 the model has a BD-rate of {format_bd(bd, '%', 'PSNR')} and a BD-PSNR of "
                        f"{format_bd(bd_db, ' dB', 'rate')}.")
    notes = [description, "", anchor_note]
    report = write_report(run_dir / "report", [run_dir / "eval"], [run_dir / "anchors" / "x265"] if anchors else [],
                          [share], title="nvc1b demo", notes=notes)
    return DemoResult(report, evaluation, anchors, bd, bd_db, training, time.perf_counter() - start)


def format_bd(value: float, unit: str, shared: str) -> str:
    """'-12.3%', '-1.25 dB' or 'n/a (no common PSNR range)'."""
    if math.isnan(value):
        return f"n/a (no common {shared} range)"
    return f"{value:.1f}{unit}" if unit == "%" else f"{value:.2f}{unit}"
