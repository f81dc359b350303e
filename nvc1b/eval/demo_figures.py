"""The demo report's two pictures besides the RD plot: the training curves of a run (loss, PSNR and bpp per
optimizer step, one colour per stage) and a row of decoded frames under the originals."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .figures import _save
from .results import ResultsError

CURVES = (("train/loss", "loss (λ·D + R)", True), ("train/psnr", "RGB PSNR (dB)", False),
          ("bpp", "bpp (all latents)", False))
"""(metrics key, axis label, log scale) of each panel of the training-curve figure."""
SMOOTH = 5
"""Running-mean window (optimizer steps) of the drawn lines; the raw values are drawn faintly behind."""


def read_metrics(path: str | Path) -> list[dict]:
    """The records of a run's ``logs/metrics.jsonl`` in step order, the newest record of a step kept (a resumed or
    rolled-back run logs a step again)."""
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: no training metrics (the run logged no optimizer step)")
    by_step: dict[int, dict] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            by_step[int(record["step"])] = record
        except (ValueError, KeyError, TypeError):
            raise ResultsError(f"{path}:{n}: not a metrics record") from None
    return [by_step[s] for s in sorted(by_step)]


def _value(record: dict, key: str) -> float:
    if key == "bpp":
        parts = [record.get("train/bpp_y"), record.get("train/bpp_m")]
        return float(sum(p for p in parts if p is not None)) if any(p is not None for p in parts) else math.nan
    value = record.get(key)
    return math.nan if value is None else float(value)


def _running_mean(values: np.ndarray, window: int) -> np.ndarray:
    out = np.empty_like(values)
    for i in range(len(values)):
        chunk = values[max(0, i - window + 1): i + 1]
        chunk = chunk[np.isfinite(chunk)]
        out[i] = chunk.mean() if len(chunk) else math.nan
    return out


def plot_training_curves(metrics: str | Path, path: str | Path) -> Path:
    """Loss, PSNR and bpp of every optimizer step of a run (``logs/metrics.jsonl``), one colour per stage."""
    records = read_metrics(metrics)
    if not records:
        raise ResultsError(f"{metrics}: no training metrics")
    stages: list[str] = []
    for record in records:
        if record.get("stage") not in stages:
            stages.append(record.get("stage"))
    fig = Figure(figsize=(12.0, 3.6))
    axes = fig.subplots(1, len(CURVES))
    colours = [f"C{i % 10}" for i in range(len(stages))]
    for ax, (key, label, log_scale) in zip(axes, CURVES, strict=True):
        for stage, colour in zip(stages, colours, strict=True):
            steps = np.array([r["step"] for r in records if r.get("stage") == stage], dtype=float)
            values = np.array([_value(r, key) for r in records if r.get("stage") == stage], dtype=float)
            if not np.isfinite(values).any():
                continue
            ax.plot(steps, values, color=colour, alpha=0.25, linewidth=0.8)
            ax.plot(steps, _running_mean(values, SMOOTH), color=colour, linewidth=1.6, label=stage,
                    marker="o" if len(steps) < 3 else None, markersize=3)
        if log_scale:
            ax.set_yscale("log")
        ax.set_xlabel("optimizer step (whole run)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper right")
    fig.suptitle("Training curves per stage (each step's mean over its clips and their randomly drawn rate points; "
                 f"running mean of {SMOOTH} steps)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


@dataclass
class FrameRow:
    """One row of the frame comparison: who made the frames, and per frame an 8-bit RGB image (H, W, 3) and a
    caption."""

    label: str
    images: list[np.ndarray]
    captions: list[str]


def plot_frame_comparison(rows: Sequence[FrameRow], frame_numbers: Sequence[int], path: str | Path,
                          title: str) -> Path:
    """A grid of frames: one row per coder (the originals first), one column per frame number."""
    if not rows or not frame_numbers:
        raise ValueError("no frames to show")
    height, width = rows[0].images[0].shape[:2]
    cell = 2.4
    fig = Figure(figsize=(cell * len(frame_numbers), cell * len(rows) * height / width + 0.6))
    axes = np.array(fig.subplots(len(rows), len(frame_numbers), squeeze=False))
    for r, row in enumerate(rows):
        for c, frame in enumerate(frame_numbers):
            ax = axes[r, c]
            ax.imshow(row.images[c], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"frame {frame}: {row.captions[c]}", fontsize=7)
            if c == 0:
                ax.set_ylabel(row.label, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
