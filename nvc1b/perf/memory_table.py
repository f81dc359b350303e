"""``nvc1b bench memory``: the memory model for one preset on one cluster profile: model states per GPU, then
activations and totals per cascade length with and without per-frame checkpointing, and what fits."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..cluster.profile import ClusterProfile
from ..config.model import ModelConfig
from ..model.counting import ParameterCount, count_parameters
from .memory import (
    GIB,
    USABLE_FRACTION,
    ActivationProfile,
    Precision,
    activation_profile,
    estimate_memory,
    largest_micro_batch,
    longest_cascade,
    measure_clip_on_device,
)


@dataclass(frozen=True)
class MemoryTable:
    config: ModelConfig
    count: ParameterCount
    cluster: ClusterProfile
    zero_stage: int
    micro_batch: int
    frames: tuple[int, ...]
    profiles: dict[bool, ActivationProfile]
    """Measured activation profile without (False) and with (True) per-frame checkpointing."""
    max_frames: int = 256

    def estimate(self, frames: int, checkpoint: bool, micro_batch: int | None = None):
        return estimate_memory(self.count, self.profiles[checkpoint], frames, micro_batch or self.micro_batch,
                               self.zero_stage, self.cluster.world_size)

    def longest(self, checkpoint: bool, micro_batch: int | None = None) -> int:
        return longest_cascade(self.count, self.profiles[checkpoint], micro_batch or self.micro_batch,
                               self.zero_stage, self.cluster.world_size, self.cluster.gpu_memory_gb, self.max_frames)

    def largest_batch(self, frames: int, checkpoint: bool) -> int:
        return largest_micro_batch(self.count, self.profiles[checkpoint], frames, self.zero_stage,
                                   self.cluster.world_size, self.cluster.gpu_memory_gb)

    def as_json(self) -> dict:
        rows = []
        for t in self.frames:
            row: dict = {"frames": t}
            for ck in (False, True):
                e = self.estimate(t, ck)
                row["checkpoint" if ck else "no_checkpoint"] = {
                    "activations": e.activations, "total": e.total, "fits": e.fits(self.cluster.gpu_memory_gb)}
            rows.append(row)
        return {
            "preset": self.config.name, "cluster": self.cluster.name, "world_size": self.cluster.world_size,
            "gpu_memory_gb": self.cluster.gpu_memory_gb, "usable_fraction": USABLE_FRACTION,
            "zero_stage": self.zero_stage, "micro_batch": self.micro_batch, "parameters": self.count.total,
            "intra_parameters": self.count.intra, "states": self.estimate(2, False).as_json()["states"],
            "profiles": {("checkpoint" if k else "no_checkpoint"): v.as_json() for k, v in self.profiles.items()},
            "rows": rows,
            "longest_cascade": {"no_checkpoint": self.longest(False), "checkpoint": self.longest(True)},
        }


def build_memory_table(
    config: ModelConfig, cluster: ClusterProfile, crop: int = 256, precision: Precision = "bf16",
    micro_batch: int | None = None, zero_stage: int | None = None, frames: tuple[int, ...] = (2, 3, 4, 6, 8, 16, 32),
) -> MemoryTable:
    """Count ``config``, measure its activations both ways (meta device) and tabulate for ``cluster``."""
    profiles = {ck: activation_profile(config, crop, precision, ck, (1, 2)) for ck in (False, True)}
    return MemoryTable(config, count_parameters(config), cluster, zero_stage or cluster.zero_stage or 2,
                       micro_batch or cluster.micro_batch or 1, tuple(frames), profiles)


@dataclass(frozen=True)
class CheckRow:
    """Predicted against measured activations of one clip on this machine."""

    frames: int
    checkpoint: bool
    predicted: int
    measured: int | None
    """None: the clip ran out of GPU memory."""

    def as_json(self) -> dict:
        return {"frames": self.frames, "checkpoint": self.checkpoint, "predicted": self.predicted,
                "measured": self.measured, "ratio": self.measured / self.predicted if self.measured else None}


def check_memory_table(t: MemoryTable, device: torch.device) -> list[CheckRow]:
    """Run the table's clips for real on ``device`` and put the measured activation peaks next to the model's.
    Without checkpointing, lengths past the first that runs out of GPU memory are not tried."""
    rows, config = [], t.config
    for ck in (False, True):
        p = t.profiles[ck]
        out_of_memory = False
        for frames in t.frames:
            measured = None if out_of_memory else measure_clip_on_device(
                config, frames, p.crop, p.precision, ck, t.micro_batch, device)
            out_of_memory = measured is None
            rows.append(CheckRow(frames, ck, p.activation_bytes(frames, t.micro_batch), measured))
    return rows


def render_check(rows: list[CheckRow], device: torch.device) -> str:
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (live tensors, fp32)"
    lines = [f"checked on {where}: activations of one real clip, GiB (predicted / measured / ratio)"]
    for r in rows:
        how = "per-frame checkpointing" if r.checkpoint else "no checkpointing"
        measured = f"{_gib(r.measured)} / {r.measured / r.predicted:.3f}" if r.measured else "out of memory"
        lines.append(f"  T={r.frames:<4} {how:<24} {_gib(r.predicted)} / {measured}")
    return "\n".join(lines)


def _gib(n: int) -> str:
    return f"{n / GIB:.2f}"


def render_memory_table(t: MemoryTable) -> str:
    c, p0 = t.cluster, t.profiles[False]
    s = t.estimate(2, False).states
    limit = USABLE_FRACTION * c.gpu_memory_gb
    lines = [
        (f"memory model: preset {t.config.name} ({t.count.total / 1e6:.1f}M P-frame + {t.count.intra / 1e6:.1f}M "
         f"intra parameters) on {c.name} ({c.world_size} ranks x {c.gpu_memory_gb:g} GiB, {limit:.1f} GiB usable), "
         f"ZeRO-{t.zero_stage}, micro-batch {t.micro_batch}, {p0.crop}x{p0.crop} crops, {p0.precision}"),
        (f"model states per GPU (counted): weights {_gib(s.weights)} + gradients {_gib(s.gradients)} + fp32 master "
         f"{_gib(s.master)} + AdamW {_gib(s.optimizer)} + DeepSpeed buffers {_gib(s.buffers)} = {_gib(s.total)} GiB"),
        "activations of a clip at micro-batch 1 (measured on the meta device at micro-batches 1 and 2), GiB:",
    ]
    for ck in (False, True):
        p = t.profiles[ck]
        lines.append(f"  {'per-frame checkpointing' if ck else 'no checkpointing':<24} I-frame {_gib(p.fixed.at(1))}, "
                     f"first P-frame {_gib(p.first_frame.at(1))}, each later P-frame {_gib(p.frame.at(1))}, "
                     f"backward/recompute peak {_gib(p.transient.at(1))}, bf16 weight casts {_gib(p.weight_copies)}")
    lines.append(f"{'frames T':>8} | {'no checkpointing':^26} | {'per-frame checkpointing':^26}")
    lines.append(f"{'':>8} | {'activations':>12}{'total/GPU':>11}   | {'activations':>12}{'total/GPU':>11}")
    for frames in t.frames:
        cells = []
        for ck in (False, True):
            e = t.estimate(frames, ck)
            mark = " " if e.fits(c.gpu_memory_gb) else "!"
            cells.append(f"{_gib(e.activations):>12}{_gib(e.total):>11} {mark} ")
        lines.append(f"{frames:>8} | " + "| ".join(cells))
    lines.append(f"'!': above {limit:.1f} GiB ({USABLE_FRACTION:.0%} of {c.gpu_memory_gb:g} GiB)")
    for ck in (False, True):
        how = "per-frame checkpointing" if ck else "no checkpointing"
        longest = t.longest(ck)
        cap = "+" if longest >= t.max_frames else ""
        batches = ", ".join(f"T={f}: {t.largest_batch(f, ck)}" for f in (2, 6, 32))
        lines.append(f"{how}: longest cascade at micro-batch {t.micro_batch}: {longest}{cap} frames; "
                     f"largest micro-batch {batches}")
    return "\n".join(lines)
