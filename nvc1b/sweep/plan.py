"""``sweep plan``: every model's parameters per part against the published totals and, for a cluster profile,
its memory per GPU in the sweep's largest training stage (nvc1b.perf.memory)."""

from __future__ import annotations

from dataclasses import dataclass

from ..cluster.profile import ClusterProfile
from ..cluster.submit import resolve_for_profile
from ..perf.memory import GIB, USABLE_FRACTION, MemoryEstimate, activation_profile, estimate_memory
from ..train.schedule import effective
from .build import SweepModel, preset_data
from .runs import model_schedule
from .spec import Sweep

PART_ABBREVIATIONS = {
    "motion_estimation": "ME", "motion_codec": "MC", "motion_entropy": "MEnt",
    "temporal_context_mining": "TCM", "contextual_codec": "CC", "contextual_entropy": "CE",
}


@dataclass(frozen=True)
class MemorySettings:
    """The training step the memory of each model is estimated for."""

    profile: ClusterProfile
    frames: int
    """Frames per clip of the longest P-frame stage."""
    crop: int
    micro_batch: int
    zero_stage: int
    precision: str
    checkpoint: bool
    """Per-frame activation checkpointing."""

    def describe(self) -> str:
        p = self.profile
        hardware = f"{p.nodes} x {p.gpus_per_node} GPUs of {p.gpu_memory_gb:g} GiB" if p.gpus_per_node else "CPU"
        ranks = f"{p.world_size} rank{'s' if p.world_size > 1 else ''}"
        return (f"memory per GPU on {p.name} ({hardware}, {ranks}): ZeRO-{self.zero_stage}, micro-batch "
                f"{self.micro_batch}, {self.crop}x{self.crop} crops, {self.frames} frames, {self.precision}, "
                f"per-frame checkpointing {'on' if self.checkpoint else 'off'}")


def memory_settings(sweep: Sweep, profile: ClusterProfile) -> MemorySettings:
    """The sweep's most demanding P-frame stage on ``profile`` (its micro-batch and ZeRO stage win)."""
    schedule = resolve_for_profile(model_schedule(sweep, sweep.base_preset), profile, str(sweep.path))
    stages = [s for s in schedule.stages if s.parts != "Intra"] or schedule.stages
    stage = max(stages, key=lambda s: (s.frames, effective(schedule, s).micro_batch))
    eff = effective(schedule, stage)
    precision = eff.precision if eff.precision != "auto" else ("bf16" if profile.gpus_per_node else "fp32")
    return MemorySettings(profile, max(stage.frames, 2), eff.crop, eff.micro_batch, eff.zero_stage, precision,
                          eff.activation_checkpointing.frames is True)  # auto: planned without it


def model_memory(model: SweepModel, settings: MemorySettings) -> MemoryEstimate:
    s = settings
    profile = activation_profile(model.config, s.crop, s.precision, s.checkpoint, (s.micro_batch,), s.frames == 2)
    return estimate_memory(model.count, profile, s.frames, s.micro_batch, s.zero_stage, s.profile.world_size)


@dataclass(frozen=True)
class PlanRow:
    model: SweepModel
    memory: MemoryEstimate | None = None


def plan_sweep(sweep: Sweep, models: list[SweepModel], settings: MemorySettings | None = None) -> list[PlanRow]:
    """One row per model; with ``settings``, each model's memory is measured (meta device, a few seconds each)."""
    from ..families import family_of  # the memory model covers the nvc family only

    return [PlanRow(m, model_memory(m, settings) if settings and family_of(m.config).memory_model else None)
            for m in models]


def _millions(n: float) -> str:
    return f"{n / 1e6:.2f}M"


def render_plan(sweep: Sweep, rows: list[PlanRow], settings: MemorySettings | None = None) -> str:
    spec = sweep.spec
    lines = [f"sweep {spec.name} ({sweep.path.name})" + (f": {spec.description}" if spec.description else "")]
    paper = any(m.paper_total for m in spec.models)
    lines.append(f"base {spec.base}, schedule {spec.schedule}" + (f" stages {spec.stages}" if spec.stages else "")
                 + f", baseline {spec.baseline}"
                 + (f", tolerance ±{spec.tolerance:.0%} against the paper's totals ('!': outside)" if paper else ""))
    if settings:
        lines.append(settings.describe())
    parts = "".join(f"{a:>8}" for a in PART_ABBREVIATIONS.values())
    memory_head = f"{'memory/GPU':>12}" if settings else ""
    lines.append(f"{'model':<8}{'total':>10}{'paper':>10}{'diff':>9}  |{parts} |{memory_head}  solved")
    for row in rows:
        m = row.model
        paper = _millions(m.spec.paper_total) if m.spec.paper_total else ""
        diff = ""
        if m.paper_diff is not None:
            diff = f"{m.paper_diff:+.2%}" + ("!" if abs(m.paper_diff) > spec.tolerance else "")
        cells = "".join(f"{m.count.parts[p] / 1e6:>8.2f}" if p in m.count.parts else f"{'—':>8}"
                        for p in PART_ABBREVIATIONS)
        memory = ""
        if row.memory is not None and settings is not None:
            fits = row.memory.fits(settings.profile.gpu_memory_gb) if settings.profile.gpus_per_node else True
            memory = f"{row.memory.total / GIB:>9.1f}GiB" + (" " if fits else "!")
        solved = ", ".join(f"{k}={v}" for k, v in m.solved.items())
        lines.append(f"{m.name:<8}{_millions(m.total):>10}{paper:>10}{diff:>9}  |{cells} |{memory}  {solved}")
    legend = ", ".join(f"{a} = {p.replace('_', ' ')}" for p, a in PART_ABBREVIATIONS.items())
    lines.append(f"parts in millions: {legend}")
    for row in rows:  # models of another family: their own parts
        m = row.model
        if not set(PART_ABBREVIATIONS) <= set(m.count.parts):
            from ..families import family_of

            parts = ", ".join(f"{p.replace('_', ' ')} {n / 1e6:.2f}" for p, n in m.count.parts.items())
            lines.append(f"{m.name} ({family_of(m.config).name}): {parts}")
    if settings and settings.profile.gpus_per_node:
        lines.append(f"'!' after the memory: more than {USABLE_FRACTION:.0%} of {settings.profile.gpu_memory_gb:g} GiB")
    return "\n".join(lines)


def plan_json(sweep: Sweep, rows: list[PlanRow], settings: MemorySettings | None = None) -> dict:
    out = {"sweep": sweep.spec.name, "spec": str(sweep.path), "baseline": sweep.spec.baseline,
           "tolerance": sweep.spec.tolerance, "models": []}
    if settings:
        s = settings
        out["memory_settings"] = {"profile": s.profile.name, "world_size": s.profile.world_size, "frames": s.frames,
                                  "crop": s.crop, "micro_batch": s.micro_batch, "zero_stage": s.zero_stage,
                                  "precision": s.precision, "checkpoint": s.checkpoint,
                                  "gpu_memory_gb": s.profile.gpu_memory_gb}
    for row in rows:
        m = row.model
        out["models"].append({
            "name": m.name, "description": m.spec.description, "extends": m.spec.extends, "figures": m.spec.figures,
            "total": m.total, "parts": dict(m.count.parts), "intra": m.count.intra,
            "paper_total": m.spec.paper_total, "diff": m.paper_diff,
            "within_tolerance": None if m.paper_diff is None else abs(m.paper_diff) <= sweep.spec.tolerance,
            "solved": m.solved, "memory": row.memory.as_json() if row.memory else None,
            "preset": preset_data(m),
        })
    return out
