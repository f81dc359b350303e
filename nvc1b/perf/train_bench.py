"""Training-step benchmark: step time, frames/s, peak memory and model FLOPs utilisation of one cascaded
training step (all six parts trained, loss L_T^all), with the optimisations switched on or off so a run can
put them side by side with plain fp32 eager in the same process."""

from __future__ import annotations

import contextlib
import gc
import time
from dataclasses import asdict, dataclass, replace

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..config.model import load_preset
from ..model.blocks import set_block_checkpointing
from ..model.codec import VideoCodec
from ..train.clip import ClipLoss, ClipSpec, set_trainable
from .tracking import LiveMemory

PEAK_TFLOPS = {  # dense tensor-core peak (bf16, fp32 without TF32) per device, from the vendors' data sheets
    "H200": (989.0, 67.0),
    "H100": (989.0, 67.0),
    "A800": (312.0, 19.5),
    "A100": (312.0, 19.5),
    "A40": (149.7, 37.4),
}


@dataclass(frozen=True)
class TrainSetup:
    """What the step runs and which optimisations are on."""

    preset: str
    frames: int = 2
    crop: int = 256
    micro_batch: int = 1
    precision: str = "fp32"
    """fp32 or bf16 (autocast)."""
    channels_last: bool = False
    compile: bool = False
    checkpoint_frames: bool = False
    checkpoint_blocks: bool = False
    offload: bool = False
    """Keep the tensors saved for backward in pinned host memory (long cascades)."""

    def baseline(self) -> "TrainSetup":
        """The same step in plain fp32 eager with no optimisation."""
        return replace(self, precision="fp32", channels_last=False, compile=False, checkpoint_frames=False,
                       checkpoint_blocks=False, offload=False)


@dataclass(frozen=True)
class TrainResult:
    setup: TrainSetup
    device: str
    step_s: float
    frames_per_s: float
    """Coded frames (I and P) per second, forward and backward."""
    samples_per_s: float
    peak_memory_gb: float
    tflops_per_step: float
    """Model FLOPs of one step (forward + backward), counted by torch's FLOP counter."""
    achieved_tflops: float
    mfu: float | None
    """achieved / peak of the device (None where the peak is unknown)."""
    peak_source: str
    memory_source: str
    """What ``peak_memory_gb`` counts: the CUDA allocator's peak, or on CPU the live tensors of one step."""


def device_peak_tflops(device: torch.device, precision: str) -> tuple[float | None, str]:
    """Vendor peak for known GPUs; on CPU, a measured fp32 matmul rate (so MFU reads 'of what matmul reaches')."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, (bf16, fp32) in PEAK_TFLOPS.items():
            if key in name:
                return (bf16 if precision == "bf16" else fp32), f"{name} data sheet"
        return None, f"{name}: no peak on record"
    a = torch.randn(2048, 2048)
    torch.mm(a, a)
    start = time.perf_counter()
    for _ in range(5):
        torch.mm(a, a)
    rate = 5 * 2 * 2048**3 / (time.perf_counter() - start) / 1e12
    return rate, f"CPU fp32 matmul measured at {rate:.3f} TFLOP/s"


def _build(setup: TrainSetup, device: torch.device) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    codec = VideoCodec(load_preset(setup.preset))
    set_block_checkpointing(codec, setup.checkpoint_blocks)
    trainable = set_trainable(codec, "All")
    spec = ClipSpec(parts="All", loss="all_T", frames=setup.frames, lambdas=(85.0, 170.0, 380.0, 840.0),
                    frame_weights=(0.5, 1.2, 0.5, 0.9), checkpoint_frames=setup.checkpoint_frames,
                    bf16=setup.precision == "bf16")
    module = ClipLoss(codec, spec).to(device)
    if setup.channels_last:
        module = module.to(memory_format=torch.channels_last)
    if setup.compile:
        module = torch.compile(module)
    return module, torch.optim.AdamW(trainable, lr=1e-5)


def _memory_reset(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _resident_bytes(module: torch.nn.Module, opt: torch.optim.Optimizer, *tensors: torch.Tensor) -> int:
    """Bytes of the distinct storages a step starts with: weights, gradients, optimizer state, inputs."""
    found = list(module.parameters()) + [p.grad for p in module.parameters() if p.grad is not None] + list(tensors)
    found += [v for state in opt.state.values() for v in state.values() if isinstance(v, torch.Tensor)]
    storages = {t.untyped_storage()._cdata: t.untyped_storage().nbytes() for t in found}
    return sum(storages.values())


def _cpu_peak_gb(step, module: torch.nn.Module, opt: torch.optim.Optimizer, clip: torch.Tensor) -> float:
    """Peak tensor memory of one step on the CPU, where no allocator keeps statistics: the storages the step
    starts with plus the highest count of those it creates while they live (``LiveMemory``). Unlike the
    process's peak RSS, this is the step's own figure, so rows of one run can be compared."""
    before = _resident_bytes(module, opt, clip)
    with LiveMemory() as live:
        step()
    return (before + live.peak) / 2**30


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def benchmark_training(setup: TrainSetup, device: torch.device, steps: int = 3, warmup: int = 1) -> TrainResult:
    """Time ``steps`` optimizer steps after ``warmup`` ones; count FLOPs of one step."""
    _memory_reset(device)
    module, opt = _build(setup, device)
    g = torch.Generator().manual_seed(1)
    clip = torch.rand(setup.micro_batch, setup.frames, 3, setup.crop, setup.crop, generator=g).to(device)
    q = torch.arange(setup.micro_batch, device=device).float() % 4

    def step() -> None:
        offload = torch.autograd.graph.save_on_cpu(pin_memory=device.type == "cuda") if setup.offload \
            else contextlib.nullcontext()
        with offload:
            loss, _ = module(clip, q)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    step_s = (time.perf_counter() - start) / steps
    if device.type == "cuda":
        peak, memory_source = torch.cuda.max_memory_allocated(device) / 2**30, "CUDA allocator peak"
    else:
        peak, memory_source = _cpu_peak_gb(step, module, opt, clip), "live tensors of one step"
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    peak_tflops, source = device_peak_tflops(device, setup.precision)
    achieved = flops / step_s / 1e12
    del module, opt, clip
    _memory_reset(device)
    return TrainResult(
        setup=setup, device=str(device), step_s=step_s, frames_per_s=setup.micro_batch * setup.frames / step_s,
        samples_per_s=setup.micro_batch / step_s, peak_memory_gb=peak, tflops_per_step=flops / 1e12,
        achieved_tflops=achieved, mfu=achieved / peak_tflops if peak_tflops else None, peak_source=source,
        memory_source=memory_source,
    )


def render(results: list[TrainResult]) -> str:
    """A table with one row per result, and the speed ratio of each row to the last (the baseline)."""
    lines = [f"{'setup':<44}{'step s':>9}{'frames/s':>10}{'peak GB':>9}{'TFLOP/step':>11}{'TFLOP/s':>9}{'MFU':>8}{'speed-up':>9}"]
    base = results[-1].frames_per_s
    for r in results:
        s = r.setup
        label = f"{s.precision}" + "".join(
            f"+{n}" for n, on in (("cl", s.channels_last), ("compile", s.compile), ("ckpt-frames", s.checkpoint_frames),
                                  ("ckpt-blocks", s.checkpoint_blocks), ("offload", s.offload)) if on
        )
        mfu = f"{r.mfu:.1%}" if r.mfu is not None else "n/a"
        lines.append(f"{label:<44}{r.step_s:>9.3f}{r.frames_per_s:>10.2f}{r.peak_memory_gb:>9.2f}"
                     f"{r.tflops_per_step:>11.3f}{r.achieved_tflops:>9.3f}{mfu:>8}{r.frames_per_s / base:>8.2f}x")
    first = results[0]
    lines.append(f"{first.setup.preset}, T={first.setup.frames}, {first.setup.crop}x{first.setup.crop}, "
                 f"micro-batch {first.setup.micro_batch}, {first.device}; MFU peak: {first.peak_source}; "
                 f"memory: {first.memory_source}")
    return "\n".join(lines)


def as_json(results: list[TrainResult]) -> list[dict]:
    return [{**asdict(r), "setup": asdict(r.setup)} for r in results]
