"""What people watch during training: a progress bar with ETA, TensorBoard curves, a log file and a status
JSON that `nvc1b status` and cluster tools read. Rank 0 only."""

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


class Monitor:
    """Per-stage progress bar, TensorBoard scalars and ETAs on rank 0; silent elsewhere."""

    def __init__(self, run_dir: Path, dist: DistInfo):
        self.run_dir, self.dist = Path(run_dir), dist
        self.writer = None
        if dist.main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        self.bar = None
        self.step_times: list[float] = []

    def start_stage(self, name: str, index: int, total: int, done: int) -> None:
        self.step_times = []
        if self.dist.main:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc=f"stage {index} {name}", unit="step", dynamic_ncols=True,
                            disable=None if os.environ.get("NVC1B_PROGRESS", "1") != "0" else True)

    def stage_eta(self, remaining: int) -> float:
        recent = self.step_times[-20:]
        return remaining * (sum(recent) / len(recent)) if recent else float("nan")

    def record_time(self, step_time: float) -> None:
        self.step_times.append(step_time)

    def step(self, global_step: int, scalars: dict[str, float], bar_text: str, record: dict) -> None:
        """Log one optimizer step: TensorBoard scalars, a line of ``logs/metrics.jsonl``, the progress bar."""
        if not self.dist.main:
            return
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, global_step)
        with open(self.run_dir / "logs" / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": global_step, **record, **scalars}) + "\n")
        self.bar.set_postfix_str(bar_text, refresh=False)
        self.bar.update(1)

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
