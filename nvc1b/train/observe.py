"""What people watch during training: a progress bar with ETA at a terminal (a progress line every N steps or
M seconds in the log otherwise, as in a SLURM job's output file), TensorBoard curves over the run's global step,
a log file and a status JSON that `nvc1b status` and cluster tools read. Rank 0 only."""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
from pathlib import Path

import torch

from .distributed import DistInfo

log = logging.getLogger("nvc1b.train")

STATUS = "status.json"


def setup_logging(run_dir: Path, dist: DistInfo) -> None:
    """Console + ``logs/train.log`` on rank 0; warnings only on other ranks."""
    root = logging.getLogger("nvc1b")
    root.setLevel(logging.INFO if dist.main else logging.WARNING)
    fmt = logging.Formatter(f"%(asctime)s [rank {dist.rank}] %(levelname)s %(message)s", "%H:%M:%S")
    log_file = (run_dir / "logs" / "train.log").resolve()
    handlers: list[logging.Handler] = []
    ours = [h for h in root.handlers if getattr(h, "_nvc1b", False)]
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) for h in ours):
        handlers.append(logging.StreamHandler(sys.stderr))
    for h in ours:  # a later run in the same process (a local sweep) logs to its own run directory
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename) != log_file:
            root.removeHandler(h)
            h.close()
    if dist.main and not any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == log_file
                             for h in root.handlers):
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    for h in handlers:
        h.setFormatter(fmt)
        h._nvc1b = True  # type: ignore[attr-defined]
        root.addHandler(h)


def peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB


def write_status(run_dir: Path, **fields) -> None:
    """Atomically replace ``status.json`` with ``fields`` plus the time of writing."""
    path = Path(run_dir) / STATUS
    tmp = path.with_name(f".{STATUS}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps({**fields, "updated": time.time()}, indent=1))
    os.replace(tmp, path)


def format_duration(seconds: float | None) -> str:
    """'1h05m' or '4m20s'; '' for None or NaN."""
    if seconds is None or seconds != seconds:
        return ""
    h, rest = divmod(int(seconds), 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def progress_line(stage: str, step: int, total: int, scalars: dict[str, float]) -> str:
    """One line for a log file: stage, step/total, loss, PSNR, bpp, lr, frames/s, memory, stage and schedule ETA."""
    def get(key: str) -> float:
        return scalars.get(key, float("nan"))

    bpp = get("train/bpp_y") + scalars.get("train/bpp_m", 0.0) if "train/bpp_y" in scalars else float("nan")
    eta = format_duration(get("eta/stage_s")) or "?"
    eta_all = format_duration(get("eta/schedule_s")) or "?"
    return (f"stage {stage} step {step}/{total}: loss {get('train/loss'):.4g} psnr {get('train/psnr'):.2f} "
            f"bpp {bpp:.3f} lr {get('train/lr'):.3g} | {get('perf/frames_per_s'):.1f} frames/s "
            f"{get('perf/peak_memory_gb'):.2f} GB | ETA stage {eta}, schedule {eta_all}")


class Monitor:
    """Per-stage progress bar (or progress lines when stderr is not a terminal), TensorBoard scalars and ETAs on
    rank 0; silent elsewhere."""

    def __init__(self, run_dir: Path, dist: DistInfo, line_every_steps: int = 10, line_every_seconds: float = 60.0):
        self.run_dir, self.dist = Path(run_dir), dist
        self.line_every_steps, self.line_every_seconds = line_every_steps, line_every_seconds
        self.writer = None
        if dist.main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        self.bar = None
        self.step_times: list[float] = []
        self.stage = ""
        self.stage_step = self.stage_total = self.last_line_step = 0
        self.last_line_time = 0.0

    def start_stage(self, name: str, index: int, total: int, done: int) -> None:
        self.step_times = []
        self.stage, self.stage_step, self.stage_total = f"{index} {name}", done, total
        self.last_line_step, self.last_line_time = done, time.monotonic()
        if self.dist.main and sys.stderr.isatty() and os.environ.get("NVC1B_PROGRESS", "1") != "0":
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc=f"stage {index} {name}", unit="step", dynamic_ncols=True)

    def stage_eta(self, remaining: int) -> float:
        recent = self.step_times[-20:]
        return remaining * (sum(recent) / len(recent)) if recent else float("nan")

    def record_time(self, step_time: float) -> None:
        self.step_times.append(step_time)

    def step(self, global_step: int, scalars: dict[str, float], bar_text: str, record: dict) -> None:
        """Log one optimizer step: TensorBoard scalars at the run's global step, a line of ``logs/metrics.jsonl``,
        the progress bar or, every N steps or M seconds and at the stage's last step, a progress line."""
        self.stage_step += 1
        if not self.dist.main:
            return
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, global_step)
        with open(self.run_dir / "logs" / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": global_step, "time": round(time.time(), 3), **record, **scalars}) + "\n")
        if self.bar is not None:
            self.bar.set_postfix_str(bar_text, refresh=False)
            self.bar.update(1)
            return
        now = time.monotonic()
        if (self.stage_step - self.last_line_step >= self.line_every_steps or self.stage_step >= self.stage_total
                or now - self.last_line_time >= self.line_every_seconds):
            log.info("%s", progress_line(self.stage, self.stage_step, self.stage_total, scalars))
            self.last_line_step, self.last_line_time = self.stage_step, now

    def end_stage(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        self.end_stage()
        if self.writer is not None:
            self.writer.close()
