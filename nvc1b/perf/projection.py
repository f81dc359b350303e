"""Wall time of a whole schedule on a cluster profile, projected from measured training throughput.

The measurement is one or more ``nvc1b bench train --json`` outputs taken on the profile's GPU. A stage of T
frames costs ``T × (seconds per frame at the nearest measured cascade length)`` per clip; its clips are its
epochs × the training set's clips (or its steps × the global batch), shared by every GPU of the profile at a
data-parallel efficiency. Every stage is costed as a full ``All`` step (all six parts trained): stages that train
only the motion parts cost less, so the projection is an upper bound for them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ConfigError
from ..train.schedule import Schedule

VIMEO_SEPTUPLET_TRAIN_CLIPS = 64612
"""Clips in Vimeo-90k's ``sep_trainlist.txt``: one epoch of the paper's training data."""

PAPER_DAYS = {"32x A40 (single-frame and short cascades)": 85.0, "4x A800 (multi-frame cascades)": 28.0}


@dataclass(frozen=True)
class Throughput:
    """Seconds of one GPU per training clip, measured at one cascade length."""

    frames: int
    seconds_per_clip: float
    source: str
    preset: str | None = None


@dataclass(frozen=True)
class StageProjection:
    name: str
    frames: int
    clips: float
    measured_at: int
    """The measured cascade length the stage's cost was scaled from."""
    hours: float


def read_throughputs(paths: list[Path]) -> list[Throughput]:
    """The first row (the optimised setup) of each ``nvc1b bench train --json`` file."""
    found: dict[int, Throughput] = {}
    for path in paths:
        try:
            rows = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such benchmark file") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
            raise ConfigError(f"{path}: expected the list that `nvc1b bench train --json` prints")
        row = rows[0]
        try:
            setup = row["setup"]
            frames, micro_batch, step_s = int(setup["frames"]), int(setup["micro_batch"]), float(row["step_s"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: row 0 lacks {exc} (not a `nvc1b bench train --json` output?)") from None
        if step_s <= 0 or micro_batch <= 0:
            raise ConfigError(f"{path}: row 0 has a non-positive step time or micro-batch")
        label = f"{path.name}: {setup.get('preset')} T={frames} on {row.get('device', '?')}"
        found[frames] = Throughput(frames, step_s / micro_batch, label, setup.get("preset"))
    return sorted(found.values(), key=lambda t: t.frames)


def _nearest(throughputs: list[Throughput], frames: int) -> Throughput:
    return min(throughputs, key=lambda t: (abs(t.frames - frames), -t.frames))


def project_schedule(schedule: Schedule, throughputs: list[Throughput], gpus: int, *,
                     clips_per_epoch: int = VIMEO_SEPTUPLET_TRAIN_CLIPS,
                     efficiency: float = 0.9) -> list[StageProjection]:
    """Hours of every stage that trains (stages that only load weights take none)."""
    if not throughputs:
        raise ConfigError("no throughput measurement given (--bench FILE from `nvc1b bench train --json`)")
    if gpus < 1 or not 0 < efficiency <= 1:
        raise ConfigError(f"need at least one GPU and an efficiency in (0, 1]; got {gpus} GPUs, {efficiency}")
    stages = []
    for stage in schedule.stages:
        if stage.epochs is not None:
            clips = stage.epochs * clips_per_epoch
        elif stage.steps is not None:
            clips = stage.steps * schedule.global_batch
        else:
            continue
        base = _nearest(throughputs, stage.frames)
        seconds = clips * base.seconds_per_clip * stage.frames / base.frames / (gpus * efficiency)
        stages.append(StageProjection(stage.name, stage.frames, clips, base.frames, seconds / 3600))
    return stages


def render(stages: list[StageProjection], throughputs: list[Throughput], gpus: int, profile: str,
           efficiency: float, preset: str | None = None) -> str:
    lines = [f"{'stage':<22}{'T':>3}{'clips':>12}{'scaled from T':>15}{'hours':>10}{'days':>8}"]
    for s in stages:
        lines.append(f"{s.name:<22}{s.frames:>3}{s.clips:>12,.0f}{s.measured_at:>15}{s.hours:>10.1f}{s.hours / 24:>8.2f}")
    total = sum(s.hours for s in stages)
    lines.append(f"{'total':<52}{total:>10.1f}{total / 24:>8.2f}")
    lines.append(f"profile {profile}: {gpus} GPUs at {efficiency:.0%} data-parallel efficiency; measured: "
                 + "; ".join(f"{t.source} ({t.seconds_per_clip:.3f} s/clip)" for t in throughputs))
    others = sorted({t.preset for t in throughputs if preset and t.preset and t.preset != preset})
    if others:
        lines.append(f"note: measured on preset {', '.join(others)}, the schedule trains '{preset}'")
    lines.append("paper (Sec. IV): " + ", ".join(f"{days:g} days on {where}" for where, days in PAPER_DAYS.items()))
    return "\n".join(lines)


def as_json(stages: list[StageProjection], gpus: int, efficiency: float) -> dict:
    return {"gpus": gpus, "efficiency": efficiency, "stages": [asdict(s) for s in stages],
            "total_days": sum(s.hours for s in stages) / 24, "paper_days": PAPER_DAYS}
