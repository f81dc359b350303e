"""Training one stage on DeepSpeed: a fresh engine from the previous stage's consolidated fp32 weights,
gradient accumulation to the global batch, bad-step skipping and rollback, checkpoints and export."""

from __future__ import annotations

import gc
import hashlib
import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Protocol

import torch

from torch import nn

from ..errors import ConfigError, DivergedError, NvcError
from ..families import build_model, family_of, load_model_config
from ..families.export import load_model, save_model
from ..model.blocks import set_block_checkpointing
from ..model.init import initialise
from .comm import training_kernels, with_communication
from .checkpointing import (
    Progress, consolidated_weights, export_stage, load_same_world, read_latest, save_checkpoint, stage_export_path,
)
from .augment import permute_colours
from .clip import ClipSpec
from .distributed import DistInfo, any_rank, mean_over_ranks
from ..perf.checkpoint_plan import CheckpointChoice, stage_frames_checkpointing
from .optimizer import build_optimizer, lr_multiplier, moments_source, set_hyperparameters, set_lr
from .observe import Monitor, peak_memory_gb, write_status
from .schedule import Schedule, effective
from .stability import SpikeDetector, injected_nan
from .updates import ClipCursor, HeldClips, clip_batches_per_epoch, frames_per_step, steps_per_clip

log = logging.getLogger("nvc1b.train")


class ClipSource(Protocol):
    """Training clips for the trainer (see nvc1b.data)."""

    def num_clips(self) -> int: ...

    def batches(
        self, *, frames: int, crop: int, micro_batch: int, seed: int, stage: int, epoch: int, rank: int,
        world_size: int, batches: int, start: int,
    ) -> Iterator[torch.Tensor]: ...


def accumulation_steps(global_batch: int, micro_batch: int, world_size: int, where: str) -> int:
    """Micro-batches per rank per optimizer step so that micro × accumulation × ranks = global batch."""
    per_step = micro_batch * world_size
    if global_batch % per_step:
        raise ConfigError(
            f"{where}: global_batch {global_batch} is not a multiple of micro_batch {micro_batch} × {world_size} ranks"
        )
    return global_batch // per_step


def stage_steps(schedule: Schedule, index: int, num_clips: int) -> int:
    """Optimizer steps of a stage: its `steps`, or its epochs over the clips at its global batch."""
    stage = schedule.stages[index]
    if stage.weights is not None:
        return 0
    if stage.steps is not None:
        return stage.steps
    cfg = effective(schedule, stage)
    per_epoch = clip_batches_per_epoch(num_clips, cfg.global_batch)
    return max(1, round(stage.epochs * per_epoch)) * steps_per_clip(stage, cfg)


def _seed(*parts: int) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") & (2**63 - 1)


def use_bf16(precision: str, device: torch.device) -> bool:
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


@dataclass
class StageContext:
    schedule: Schedule
    index: int
    run_dir: Path
    dist: DistInfo
    data: ClipSource
    monitor: Monitor
    future_frame_steps: int = 0
    """Σ steps × frames of the stages after this one (for the schedule ETA)."""
    max_total_steps: int | None = None
    checkpoint_every: int | None = None
    stop_requested: callable = lambda: False  # noqa: E731 - set by the preemption handler


@dataclass
class StageResult:
    progress: Progress
    finished: bool
    """The stage ran to its end (False when --max-steps or a stop request ended it early)."""


def initial_codec(ctx: StageContext) -> nn.Module:
    """The model a stage starts from: the newest earlier stage's export, else a seeded fresh model."""
    return stage_start_model(ctx.schedule, ctx.index, ctx.run_dir)


def stage_start_model(schedule: Schedule, index: int, run_dir: Path) -> nn.Module:
    """The model stage ``index`` of a run starts from (its frozen parts keep these weights for the whole stage)."""
    for earlier in range(index - 1, -1, -1):
        path = stage_export_path(run_dir, earlier, schedule.stages[earlier].name)
        if path.is_file():
            return load_model(path)
        if stage_steps(schedule, earlier, 1) or schedule.stages[earlier].weights:
            raise NvcError(
                f"stage {index} ('{schedule.stages[index].name}') starts from stage {earlier} "
                f"('{schedule.stages[earlier].name}'), which has no export in {path.parent}: run it first"
            )
    if schedule.init_weights:
        return _initial_export(schedule)
    torch.manual_seed(schedule.seed)
    codec = build_model(load_model_config(schedule.preset))
    zeroed = initialise(codec, schedule.init)
    if zeroed:
        log.info("init %s: %d residual branches start at zero%s", schedule.init, zeroed,
                 "; the codec starts as a block-mean colour codec, I- and P-frames" if schedule.init == "pass-through" else "")
    if schedule.spynet_weights:
        codec.load_pretrained("spynet", schedule.spynet_weights)
    return codec


def _initial_export(schedule: Schedule) -> nn.Module:
    """The export named by ``init_weights``, checked to have the schedule preset's architecture."""
    codec = load_model(schedule.init_weights)
    ignore = {"name", "description", "reference"}
    if codec.config.model_dump(exclude=ignore) != load_model_config(schedule.preset).model_dump(exclude=ignore):
        raise ConfigError(f"key 'init_weights': {schedule.init_weights} holds a '{codec.config.name}' model, not the "
                          f"architecture of the schedule's preset '{schedule.preset}'")
    return codec


def run_stage(ctx: StageContext, progress: Progress, resume_tag: str | None) -> StageResult:
    """Train stage ``ctx.index`` from ``progress`` (resuming from checkpoint ``resume_tag`` if given)."""
    stage = ctx.schedule.stages[ctx.index]
    if stage.weights is not None:
        return _load_intra(ctx, progress)
    while True:
        outcome = _attempt(ctx, progress, resume_tag)
        if isinstance(outcome, StageResult):
            return outcome
        progress, resume_tag = outcome  # rolled back: rebuild from the last good state


def _load_intra(ctx: StageContext, progress: Progress) -> StageResult:
    stage = ctx.schedule.stages[ctx.index]
    codec = initial_codec(ctx)
    codec.load_pretrained("intra", stage.weights)
    if ctx.dist.main:
        save_model(codec, stage_export_path(ctx.run_dir, ctx.index, stage.name), extra={"stage": stage.name})
    log.info("stage %s: intra coder loaded from %s", stage.name, stage.weights)
    return StageResult(replace(progress, stage_done=True), finished=True)


def export_finished_stage(ctx: StageContext, tag: str) -> Path:
    """Export stage ``ctx.index`` from its final checkpoint ``tag`` (a crash came between the checkpoint and the export)."""
    stage = ctx.schedule.stages[ctx.index]
    return export_stage(ctx.run_dir, tag, initial_codec(ctx), ctx.index, stage.name, ctx.dist)


def _ds_config(cfg: Schedule, accum: int) -> dict:
    return {
        "train_micro_batch_size_per_gpu": cfg.micro_batch,
        "gradient_accumulation_steps": accum,
        "gradient_clipping": cfg.grad_clip,
        "zero_optimization": {"stage": cfg.zero_stage},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }


def _attempt(ctx: StageContext, progress: Progress, resume_tag: str | None):
    """Build the engine and train until the stage ends (StageResult) or a rollback is due ((progress, tag))."""
    import deepspeed

    sched, dist, stage = ctx.schedule, ctx.dist, ctx.schedule.stages[ctx.index]
    cfg = effective(sched, stage)
    where = f"stage {ctx.index} ('{stage.name}')"
    accum = accumulation_steps(cfg.global_batch, cfg.micro_batch, dist.world_size, where)
    num_clips = ctx.data.num_clips()
    per_epoch = clip_batches_per_epoch(num_clips, cfg.global_batch)
    total = stage_steps(sched, ctx.index, num_clips)

    codec = initial_codec(ctx)
    family = family_of(codec)
    start = family.build(codec.config)  # a CPU copy of the stage's starting weights (frozen parts never change)
    start.load_state_dict(codec.state_dict())
    same_world = progress.world_size == dist.world_size
    if resume_tag and not same_world:
        codec.load_state_dict(consolidated_weights(ctx.run_dir, resume_tag, start))
        log.warning(
            "%s: checkpoint %s was written by %d ranks, resuming on %d: model weights carried (fp32 consolidation), "
            "stage progress and learning-rate factor carried, AdamW moments reset, data stream re-split",
            where, resume_tag, progress.world_size, dist.world_size,
        )
    trainable = family.set_trainable(codec, stage.parts)
    if family.memory_model:
        frames_checkpointing = stage_frames_checkpointing(sched, stage, codec.config, dist.device, dist.world_size)
    else:  # frames are independent given the latents: there is no cascade to checkpoint
        frames_checkpointing = CheckpointChoice(False, f"the {family.name} family codes a clip's frames as one batch")
    log.info("stage %d '%s': %s", ctx.index, stage.name, frames_checkpointing.describe())
    set_block_checkpointing(codec, cfg.activation_checkpointing.blocks)
    spec = ClipSpec(
        parts=stage.parts, loss=stage.loss, frames=stage.frames, lambdas=tuple(sched.lambdas),
        frame_weights=tuple(sched.frame_weights), checkpoint_frames=frames_checkpointing.on,
        bf16=use_bf16(cfg.precision, dist.device), colorspace=sched.colorspace,
    )
    model = family.clip_loss(codec.to(dist.device), spec)
    lr = stage.lr * progress.lr_factor
    optimizer = build_optimizer(trainable, lr, cfg)
    ds_config = with_communication(_ds_config(cfg, accum), dist.device)
    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds_config)
    if resume_tag and same_world:
        load_same_world(engine, ctx.run_dir, resume_tag)
    elif not resume_tag and (carried := moments_source(sched, ctx.index, ctx.run_dir, dist.world_size)):
        load_same_world(engine, ctx.run_dir, carried)  # weights equal the export; AdamW moments carried on
    set_hyperparameters(engine.optimizer, lr, cfg)
    progress = replace(progress, world_size=dist.world_size)
    per_clip = steps_per_clip(stage, cfg)
    log.info("stage %d '%s': %s", ctx.index, stage.name, f"updates per P-frame, reference detached: {per_clip} optimizer "
             "steps per clip-batch" if per_clip > 1 else "one optimizer step per clip-batch")
    log.info(
        "stage %d '%s': %s, loss %s, %d frames, lr %g, %d/%d steps done, %d clips/step = %d ranks x %d micro x %d "
        "accumulation, ZeRO-%d, %s", ctx.index, stage.name, stage.parts, stage.loss, stage.frames, lr, progress.step,
        total, cfg.global_batch, dist.world_size, cfg.micro_batch, accum, cfg.zero_stage,
        "bf16 autocast" if spec.bf16 else "fp32",
    )
    try:
        with training_kernels(dist.device):
            return _loop(ctx, engine, progress, cfg, accum, per_epoch, total, lr, start)
    finally:
        engine.destroy() if hasattr(engine, "destroy") else None
        del engine, model, optimizer, start
        gc.collect()
        if dist.device.type == "cuda":
            torch.cuda.empty_cache()


def _loop(ctx, engine, progress: Progress, cfg: Schedule, accum: int, per_epoch: int, total: int, lr: float,
          start: nn.Module):
    sched, dist, stage = ctx.schedule, ctx.dist, ctx.schedule.stages[ctx.index]
    detector = SpikeDetector(cfg.stability)
    every = ctx.checkpoint_every or cfg.checkpoint_every
    ctx.monitor.start_stage(stage.name, ctx.index, total, progress.step)
    stream, stream_epoch = None, -1
    per_clip, held, saved_at = steps_per_clip(stage, cfg), HeldClips(), progress.step
    while progress.step < total:
        cursor = ClipCursor(progress.step, per_clip)
        epoch = cursor.clip // per_epoch
        if epoch != stream_epoch:
            stream = iter(ctx.data.batches(
                frames=stage.frames, crop=cfg.crop, micro_batch=cfg.micro_batch, seed=sched.seed, stage=ctx.index,
                epoch=epoch, rank=dist.rank, world_size=dist.world_size, batches=per_epoch * accum,
                start=(cursor.clip % per_epoch) * accum,
            ))
            stream_epoch = epoch
        step_lr = lr * lr_multiplier(stage, progress.step, total)
        set_lr(engine.optimizer, step_lr)
        t0 = time.perf_counter()
        data_time, sums, step_loss = 0.0, {}, torch.zeros((), device=dist.device)
        for micro in range(accum):
            if cursor.first:
                t_data = time.perf_counter()
                frames = next(stream).to(dist.device, non_blocking=True)
                data_time += time.perf_counter() - t_data
                torch.manual_seed(_seed(sched.seed, ctx.index, cursor.clip, micro, dist.rank))
                q_index = torch.randint(0, len(sched.lambdas), (frames.shape[0],)).float().to(dist.device)
                if sched.data.permute_colours:
                    frames = permute_colours(frames)
                held.put(micro, frames, q_index)
            frames, q_index, state = held.get(micro)
            if cursor.frame is None:
                loss, metrics = engine(frames, q_index)
            else:  # per-frame updates: P-frame cursor.frame against the reference left by the previous step
                loss, metrics, state = engine(frames, q_index, frame=cursor.frame, state=state)
                held.put(micro, frames, q_index, state)
            if injected_nan(stage.name, progress.step + 1, progress.rollbacks, dist.rank):  # steps count from 1
                loss = loss * float("nan")
            step_loss = step_loss + loss.detach().float() / accum
            if micro == accum - 1:  # the step's loss over all ranks and micro-batches decides, the same everywhere
                global_loss = mean_over_ranks({"loss": step_loss}, dist.device)["loss"]
                if detector.is_bad(global_loss):
                    loss = loss * float("nan")  # ZeRO then sees a non-finite gradient norm and skips the step
            engine.backward(loss)
            engine.step()
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v / accum
        applied = engine.was_step_applied()
        scalars = mean_over_ranks(sums, dist.device)
        step_time = time.perf_counter() - t0
        progress = replace(progress, step=progress.step + 1, total_steps=progress.total_steps + 1)
        grad_norm = engine.get_global_grad_norm()
        _report(ctx, progress, scalars, applied, grad_norm, step_lr, cfg, step_time, data_time, total, engine.skipped_steps)

        if detector.record(applied, global_loss):
            return _rollback(ctx, progress, detector)
        stop = ctx.stop_requested() or (ctx.max_total_steps is not None and progress.total_steps >= ctx.max_total_steps)
        stop = any_rank(stop, dist.device)
        if progress.step % per_clip:  # checkpoints and stops only between clip-batches (no reference to save)
            continue
        if progress.step < total and (stop or progress.step // every > saved_at // every):
            save_checkpoint(engine, ctx.run_dir, progress, cfg.keep_checkpoints, dist)
            saved_at = progress.step
        if stop and progress.step < total:
            ctx.monitor.end_stage()
            return StageResult(progress, finished=False)
    progress = replace(progress, stage_done=True)
    tag = save_checkpoint(engine, ctx.run_dir, progress, cfg.keep_checkpoints, dist)
    ctx.monitor.end_stage()
    export_stage(ctx.run_dir, tag, start, ctx.index, stage.name, dist)
    return StageResult(progress, finished=True)


def _rollback(ctx: StageContext, progress: Progress, detector: SpikeDetector):
    """Go back to this stage's newest checkpoint (or its start) with a lower learning rate."""
    stage = ctx.schedule.stages[ctx.index]
    cfg = effective(ctx.schedule, stage).stability
    if progress.rollbacks >= cfg.max_rollbacks:
        raise DivergedError(
            f"stage {ctx.index} ('{stage.name}') diverged: {detector.consecutive_bad} bad steps in a row after "
            f"{progress.rollbacks} rollbacks (step {progress.step}); lower lr or check the data"
        )
    factor = progress.lr_factor * cfg.rollback_lr_factor
    latest = read_latest(ctx.run_dir)
    if latest and latest[1].stage == ctx.index and not latest[1].stage_done:
        tag, saved = latest
        restored = replace(saved, lr_factor=factor, rollbacks=progress.rollbacks + 1)
    else:
        tag = None
        restored = Progress(ctx.index, stage.name, 0, progress.total_steps - progress.step,
                            lr_factor=factor, rollbacks=progress.rollbacks + 1, world_size=ctx.dist.world_size)
    log.warning(
        "stage %s: %d consecutive bad steps (non-finite or spiking loss/gradient) at step %d: rolling back to %s "
        "with learning rate x%g",
        stage.name, detector.consecutive_bad, progress.step, tag or "the start of the stage", factor,
    )
    ctx.monitor.end_stage()
    return restored, tag


def _report(ctx, progress, scalars, applied, grad_norm, lr, cfg, step_time, data_time, total, skipped):
    stage = ctx.schedule.stages[ctx.index]
    samples = cfg.global_batch
    ctx.monitor.record_time(step_time)
    eta_stage = ctx.monitor.stage_eta(total - progress.step)
    per_frame_step = ctx.monitor.stage_eta(1) / frames_per_step(stage, cfg)  # recent seconds per step, per frame
    eta_schedule = eta_stage + per_frame_step * ctx.future_frame_steps
    tb = {f"train/{k}": v for k, v in scalars.items()}
    tb.update({
        "train/lr": lr,
        "train/grad_norm": float(grad_norm) if grad_norm is not None and applied else float("nan"),
        "train/skipped_steps": float(skipped),
        "perf/step_time_s": step_time,
        "perf/data_time_s": data_time,
        "perf/compute_time_s": step_time - data_time,
        "perf/samples_per_s": samples / step_time,
        "perf/frames_per_s": samples * stage.frames / step_time,
        "perf/peak_memory_gb": peak_memory_gb(ctx.dist.device),
        "eta/stage_s": eta_stage,
        "eta/schedule_s": eta_schedule,
    })
    bar = f"loss {scalars.get('loss', float('nan')):.4g} psnr {scalars.get('psnr', float('nan')):.2f}"
    if "bpp_y" in scalars:
        bar += f" bpp {scalars.get('bpp_y', 0) + scalars.get('bpp_m', 0):.3f}"
    if not applied:
        bar += " (skipped)"
    ctx.monitor.step(progress.total_steps, tb, bar, {"stage": stage.name, "stage_step": progress.step, "applied": applied})
    if ctx.dist.main:
        write_status(
            ctx.run_dir, state="running", stage=ctx.index, stage_name=stage.name, step=progress.step,
            stage_steps=total, total_steps=progress.total_steps, loss=scalars.get("loss"),
            eta_stage_s=eta_stage if math.isfinite(eta_stage) else None,
            eta_schedule_s=eta_schedule if math.isfinite(eta_schedule) else None,
        )
