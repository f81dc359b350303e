"""What the demo report says at a glance: where the demo's time went, the summary paragraph (every number in it
read from the results files: the model's and the anchor's ``dataset.json`` and ``timings.json``), and the frame
comparison (originals, the model's decoded frames at its highest rate, x265 at the nearest rate)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..coding.runtime import CodingModel
from ..coding.sequence import decode_sequence, encode_sequence
from ..data.testsets import TestSet
from ..files import write_text_atomic
from .anchors import anchor_frames
from .bdrate import bd_psnr, bd_rate
from .curves import RDCurve, curve_from_summary
from .demo_figures import FrameRow, plot_frame_comparison
from .protocol import read_references, resolve_protocol
from .results import DATASET_JSON, ResultsError, read_json

TIMINGS_JSON = "timings.json"
FRAMES_PNG = "frames.png"
CURVES_PNG = "training_curves.png"


@dataclass
class TimeSplit:
    """Wall seconds of each part of one ``nvc1b demo`` call (work reused from an earlier call costs ~0)."""

    training: dict[str, float] = field(default_factory=dict)
    """Stage name → seconds (engine set-up, steps, checkpoint and export) in this call."""
    evaluation: float = 0.0
    """The model through real bitstreams at its rate points."""
    channel_share: float = 0.0
    anchors: float = 0.0
    report: float = 0.0
    """The frame comparison, the figures and report.md."""
    other: float = 0.0
    """Data check, loading the export, start-up."""

    @property
    def total(self) -> float:
        return sum(self.training.values()) + self.evaluation + self.channel_share + self.anchors + self.report + \
            self.other

    def rows(self) -> list[tuple[str, float]]:
        return [*((f"training: {name}", s) for name, s in self.training.items()),
                ("evaluation (real bitstreams)", self.evaluation), ("per-channel bitrate share", self.channel_share),
                ("x265 anchors", self.anchors), ("report and figures", self.report), ("other", self.other),
                ("total", self.total)]

    def table(self) -> list[str]:
        lines = ["| part | seconds | share |", "|---|---:|---:|"]
        total = self.total or 1.0
        lines += [f"| {name} | {s:.0f} | {100 * s / total:.0f}% |" for name, s in self.rows()]
        return lines

    def save(self, path: Path) -> None:
        write_text_atomic(path, json.dumps({**asdict(self), "total": self.total}, indent=1) + "\n")


def stage_seconds(metrics: Path, since: float) -> dict[str, float]:
    """Seconds each stage took in the training that began at ``since`` (epoch seconds), from the timestamps of
    ``logs/metrics.jsonl``: a stage runs from the previous stage's last step (or ``since``) to its own last step."""
    if not metrics.is_file():
        return {}
    last: dict[str, float] = {}
    for line in metrics.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("time", 0) >= since:
            last[record["stage"]] = max(last.get(record["stage"], 0.0), float(record["time"]))
    out, previous = {}, since
    for name, end in sorted(last.items(), key=lambda kv: kv[1]):
        out[name], previous = end - previous, end
    return out


def _curve(folder: Path) -> RDCurve:
    path = folder / DATASET_JSON
    if not path.is_file():
        raise ResultsError(f"{path}: missing (run the evaluation first)")
    return curve_from_summary(read_json(path), str(path))


def summary_numbers(model: Path, anchor: Path | None, timings: Path, ladder: Path | None = None) -> dict[str, Any]:
    """The numbers the summary paragraph cites, each computed from the results files: the model's, the anchor's
    and the anchor ladder's results folders (``OUT/rgb/<DATASET>``) and the demo's ``timings.json``."""
    curve = _curve(model)
    times = read_json(timings)
    numbers: dict[str, Any] = {
        "bpp_low": curve.bpp[0], "bpp_high": curve.bpp[-1], "psnr_low": curve.psnr[0], "psnr_high": curve.psnr[-1],
        "bpp_span": curve.bpp[-1] / curve.bpp[0], "points": len(curve.bpp),
        "training_minutes": sum(times["training"].values()) / 60, "total_minutes": times["total"] / 60,
    }
    if anchor is not None:
        ref = _curve(anchor)
        lo, hi = max(min(curve.psnr), min(ref.psnr)), min(max(curve.psnr), max(ref.psnr))
        qps = [int(p[2:]) for p in ref.extra["point"]]
        numbers.update({
            "anchor_qp_low": min(qps), "anchor_qp_high": max(qps), "anchor_psnr_low": min(ref.psnr),
            "anchor_psnr_high": max(ref.psnr), "bd_rate": bd_rate(ref, curve), "bd_psnr": bd_psnr(ref, curve),
            "overlap_low": lo, "overlap_high": hi,
        })
    if ladder is not None:
        hull = _curve(ladder)
        scales = read_json(ladder / DATASET_JSON)["scales"]
        numbers.update({
            "ladder_scale_max": max(scales), "ladder_psnr_low": min(hull.psnr), "ladder_bpp_low": min(hull.bpp),
            "ladder_bd_rate": bd_rate(hull, curve), "ladder_bd_psnr": bd_psnr(hull, curve),
            "ladder_overlap_low": max(min(curve.psnr), min(hull.psnr)),
            "ladder_overlap_high": min(max(curve.psnr), max(hull.psnr)),
        })
    return numbers


def _bd_sentence(bd: float, bd_db: float, lo: float, hi: float, anchor: str) -> str:
    text = (f"Over the PSNR range both cover ({lo:.2f}–{hi:.2f} dB) the model needs {abs(bd):.1f}% "
            f"{'more' if bd > 0 else 'fewer'} bits than {anchor} for the same PSNR (its BD-rate)")
    if math.isfinite(bd_db):
        text += f", and at the same rate its PSNR differs by {bd_db:+.2f} dB (BD-PSNR)"
    return text + ". "


def summary_paragraph(n: dict[str, Any], preset: str) -> str:
    """What the numbers mean, in one paragraph; every number in it is one of ``summary_numbers``."""
    text = (f"**What the numbers mean.** After {n['training_minutes']:.1f} minutes of training from scratch on this "
            f"machine ({n['total_minutes']:.1f} minutes for the whole demo), the `{preset}` model codes the "
            f"synthetic clips through real bitstreams at {n['bpp_low']:.3f}–{n['bpp_high']:.3f} bpp "
            f"(a {n['bpp_span']:.1f}× span over its {n['points']} rate points), with an RGB PSNR of "
            f"{n['psnr_low']:.2f} dB at its lowest rate and {n['psnr_high']:.2f} dB at its highest. ")
    if "bd_rate" in n:
        text += (f"x265 at QP {n['anchor_qp_low']}–{n['anchor_qp_high']} reaches {n['anchor_psnr_low']:.2f}–"
                 f"{n['anchor_psnr_high']:.2f} dB. ")
        if math.isfinite(n["bd_rate"]):
            text += _bd_sentence(n["bd_rate"], n["bd_psnr"], n["overlap_low"], n["overlap_high"], "x265")
        else:
            text += ("The two curves share no PSNR range, so there is no BD-rate"
                     + (" against x265 at full size. " if "ladder_bd_rate" in n else ". "))
    if "ladder_bd_rate" in n:
        text += (f"Its resolution ladder (coding down to 1/{n['ladder_scale_max']} of each side and scaling back up) "
                 f"reaches down to {n['ladder_psnr_low']:.2f} dB at {n['ladder_bpp_low']:.3f} bpp. ")
        if math.isfinite(n["ladder_bd_rate"]):
            text += _bd_sentence(n["ladder_bd_rate"], n["ladder_bd_psnr"], n["ladder_overlap_low"],
                                 n["ladder_overlap_high"], "the ladder's convex hull")
        elif not math.isfinite(n.get("bd_rate", math.nan)):
            text += "The model's curve shares no PSNR range with that either, so there is no BD-rate. "
    text += ("So the pipeline learns and codes end to end (data, staged training, real entropy coding and decoding, "
             "anchors, BD-rate), but minutes on a CPU make a codec that shows the machinery, not the architecture.")
    return text


FULL_SIZE = (
    "**What the full-size run needs** (the paper's figures): the `nvc1b` preset (about a billion parameters) "
    "trained with `stages/nvc1b_rgb.yaml`, an intra stage and then Table II's stages on Vimeo-90k septuplets at "
    "256×256 crops, global batch 32: the paper spent 32 A40 GPUs for 85 days, then 4 A800s for 28 days on the "
    "cascaded stages (`nvc1b cluster` writes the SLURM jobs), and evaluates on 96 whole frames of HEVC B–E, UVG "
    "and MCL-JCV against VTM (`nvc1b eval`, `nvc1b report`)."
)
"""The paragraph after the summary: what the demo leaves out."""


def _csv_rows(folder: Path, sequence: str, point: str) -> list[dict[str, str]]:
    path = folder / "sequences" / sequence / f"{point}.csv"
    if not path.is_file():
        raise ResultsError(f"{path}: missing (run the evaluation first)")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _image(rgb8: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(rgb8).transpose(1, 2, 0))


def frame_comparison(codec: CodingModel, test_set: TestSet, model: Path, anchor: Path | None, out: Path,
                     frames: int, crop: tuple[int, int] | None, q_index: float, sequence: str | None = None,
                     frame_numbers: Sequence[int] | None = None) -> Path:
    """``out``: the originals of one sequence, the model's frames decoded from a real bitstream at ``q_index``,
    and (with anchors) x265's frames at the QP whose rate on that sequence is nearest the model's; captions
    carry each frame's PSNR and bits from the results CSVs."""
    sequence = sequence or test_set.sequences[0].name
    found = [s for s in test_set.sequences if s.name == sequence]
    if not found:
        raise ResultsError(f"{test_set.name}: no sequence '{sequence}'")
    protocol = resolve_protocol(test_set, frames, None, "rgb", crop)
    numbers = list(frame_numbers) if frame_numbers else sorted({0, frames // 2, frames - 1})
    originals = [x for x, _ in read_references(test_set, found[0], protocol)]
    summary = read_json(model / DATASET_JSON)
    point = f"q{q_index:g}"
    encoded = encode_sequence(codec, originals, q_index, protocol.intra_period, keep_reconstruction=False)
    decoded = decode_sequence(codec, encoded.stream).frames
    model_rows = _csv_rows(model, sequence, point)

    def captions(rows: list[dict[str, str]]) -> list[str]:
        return [f"{float(rows[i]['psnr_rgb']):.2f} dB, {float(rows[i]['bpp']):.3f} bpp" for i in numbers]

    grid = [FrameRow("original", [_image(np.rint(originals[i].numpy() * 255).astype(np.uint8)) for i in numbers],
                     ["source"] * len(numbers)),
            FrameRow(f"{summary.get('label', 'model')} {point}",
                     [_image(np.rint(decoded[i].clamp(0, 1).numpy() * 255).astype(np.uint8)) for i in numbers],
                     captions(model_rows))]
    if anchor is not None:
        model_bpp = next(p["bpp"] for p in summary["sequences"][sequence] if p["point"] == point)
        anchor_points = read_json(anchor / DATASET_JSON)["sequences"][sequence]
        nearest = min(anchor_points, key=lambda p: abs(math.log(p["bpp"] / model_bpp)))
        planes, _ = anchor_frames("x265", test_set, sequence, int(nearest["rate_parameter"]), frames, numbers,
                                  "rgb", crop)
        grid.append(FrameRow(f"x265 {nearest['point']}", [_image(p.rgb) for p in planes],
                             captions(_csv_rows(anchor, sequence, nearest["point"]))))
    title = (f"{sequence}, the first {frames} frames{f' in the centred {crop[0]}x{crop[1]} window' if crop else ''}\n"
             "frame 0 is the I-frame, the others P-frames; per-frame RGB PSNR and bpp from the results")
    return plot_frame_comparison(grid, numbers, out, title)
