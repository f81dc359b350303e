"""Wall time of a whole schedule on a cluster profile, projected from measured training throughput.

The measurement is one or more ``nvc1b bench train --json`` outputs taken on the profile's GPU. A stage of T
frames costs ``T × (seconds per frame at the nearest measured cascade length)`` per clip; its clips are its
epochs × the training set's clips (or its steps × the global batch), shared by every GPU of the profile at a
data-parallel efficiency. Every stage is costed as a full ``All`` step (all six parts trained): stages that train
only the motion parts cost less, so the projection is an upper bound for them.

Communication is counted next to compute when the profile gives ``interconnect_gbps``: every optimizer step
reduce-scatters the stage's trainable gradients (bf16) and all-gathers its updated parameters (fp32) over a ring,
(N−1)/N of each per rank (``nvc1b.train.comm``). The reduce-scatter overlaps the backward (taken as two thirds
of a step's compute); what does not fit under it, and the all-gather, add to the stage's time. Per-frame updates
(``updates: per_frame``) take T−1 optimizer steps per clip-batch, so they communicate T−1 times as often.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config.model import load_preset
from ..errors import ConfigError
from ..model.counting import count_parameters
from ..train.clip import PART_SETS
from ..train.comm import step_communication_bytes
from ..train.schedule import Schedule, effective
from ..train.updates import steps_per_clip

BACKWARD_SHARE = 2 / 3
"""Share of a step's compute the gradient reduce-scatter can hide under (the backward)."""

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
    """Compute plus exposed communication."""
    steps: float = 0.0
    """Optimizer steps (clip-batches × steps per clip-batch)."""
    compute_hours: float = 0.0
    comm_hours: float = 0.0
    """Communication not hidden under the backward."""


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
                     efficiency: float = 0.9, interconnect_gbps: float = 0.0) -> list[StageProjection]:
    """Hours of every stage that trains (stages that only load weights take none)."""
    if not throughputs:
        raise ConfigError("no throughput measurement given (--bench FILE from `nvc1b bench train --json`)")
    if gpus < 1 or not 0 < efficiency <= 1:
        raise ConfigError(f"need at least one GPU and an efficiency in (0, 1]; got {gpus} GPUs, {efficiency}")
    count = count_parameters(load_preset(schedule.preset)) if interconnect_gbps > 0 else None
    stages = []
    for stage in schedule.stages:
        cfg = effective(schedule, stage)
        if stage.epochs is not None:
            clips = stage.epochs * clips_per_epoch
            steps = max(1, round(stage.epochs * (clips_per_epoch // cfg.global_batch))) * steps_per_clip(stage, cfg)
        elif stage.steps is not None:
            clips = stage.steps / steps_per_clip(stage, cfg) * cfg.global_batch
            steps = stage.steps
        else:
            continue
        base = _nearest(throughputs, stage.frames)
        compute = clips * base.seconds_per_clip * stage.frames / base.frames / (gpus * efficiency)
        comm = 0.0
        if count is not None:
            trained = count.intra if stage.parts == "Intra" else sum(count.parts[p] for p in PART_SETS[stage.parts])
            sent = step_communication_bytes(trained, trained, gpus)
            per_step = sent * 8 / (interconnect_gbps * 1e9)
            gather = step_communication_bytes(0, trained, gpus) * 8 / (interconnect_gbps * 1e9)
            hidden = BACKWARD_SHARE * compute / steps
            comm = steps * (gather + max(0.0, per_step - gather - hidden))
        stages.append(StageProjection(stage.name, stage.frames, clips, base.frames, (compute + comm) / 3600, steps,
                                      compute / 3600, comm / 3600))
    return stages


def render(stages: list[StageProjection], throughputs: list[Throughput], gpus: int, profile: str,
           efficiency: float, preset: str | None = None, interconnect_gbps: float = 0.0,
           checkpointing: dict | None = None) -> str:
    ckpt = checkpointing or {}
    lines = [f"{'stage':<22}{'T':>3}{'clips':>12}{'steps':>10}{'scaled from T':>15}{'compute h':>11}{'comm h':>9}"
             f"{'hours':>10}{'days':>8}" + ("  per-frame checkpointing" if ckpt else "")]
    for s in stages:
        choice = ckpt.get(s.name)
        lines.append(f"{s.name:<22}{s.frames:>3}{s.clips:>12,.0f}{s.steps:>10,.0f}{s.measured_at:>15}"
                     f"{s.compute_hours:>11.1f}{s.comm_hours:>9.1f}{s.hours:>10.1f}{s.hours / 24:>8.2f}"
                     + (f"  {'on' if choice.on else 'off'}: {choice.reason}" if choice else ""))
    total, compute, comm = (sum(getattr(s, k) for s in stages) for k in ("hours", "compute_hours", "comm_hours"))
    lines.append(f"{'total':<62}{compute:>11.1f}{comm:>9.1f}{total:>10.1f}{total / 24:>8.2f}")
    link = (f"{interconnect_gbps:g} Gb/s per GPU for gradient communication" if interconnect_gbps
            else "no interconnect_gbps in the profile: communication not counted")
    lines.append(f"profile {profile}: {gpus} GPUs at {efficiency:.0%} data-parallel efficiency, {link}; measured: "
                 + "; ".join(f"{t.source} ({t.seconds_per_clip:.3f} s/clip)" for t in throughputs))
    others = sorted({t.preset for t in throughputs if preset and t.preset and t.preset != preset})
    if others:
        lines.append(f"note: measured on preset {', '.join(others)}, the schedule trains '{preset}'")
    lines.append("paper (Sec. IV): " + ", ".join(f"{days:g} days on {where}" for where, days in PAPER_DAYS.items()))
    return "\n".join(lines)


def as_json(stages: list[StageProjection], gpus: int, efficiency: float, checkpointing: dict | None = None) -> dict:
    rows = [{**asdict(s), **({"checkpoint_frames": asdict(checkpointing[s.name])} if checkpointing and s.name in
                             checkpointing else {})} for s in stages]
    return {"gpus": gpus, "efficiency": efficiency, "stages": rows,
            "total_days": sum(s.hours for s in stages) / 24,
            "compute_days": sum(s.compute_hours for s in stages) / 24,
            "comm_days": sum(s.comm_hours for s in stages) / 24, "paper_days": PAPER_DAYS}
