"""Bad-step detection: non-finite losses and loss spikes. The decision is the same on every rank (it is
all-reduced before use, and the running mean is fed with rank-averaged losses)."""

from __future__ import annotations

import math
import os
from collections import deque

from .schedule import Stability


class SpikeDetector:
    """Flags a loss that is non-finite or above ``spike_factor`` × the mean of the last ``window`` good steps."""

    def __init__(self, cfg: Stability):
        self.cfg = cfg
        self.recent: deque[float] = deque(maxlen=cfg.window)
        self.consecutive_bad = 0

    def is_bad(self, loss: float) -> bool:
        if not math.isfinite(loss):
            return True
        if len(self.recent) < self.recent.maxlen:
            return False
        return loss > self.cfg.spike_factor * (sum(self.recent) / len(self.recent))

    def record(self, applied: bool, mean_loss: float) -> bool:
        """Account one optimizer step; True when the run should roll back."""
        if applied:
            self.consecutive_bad = 0
            if math.isfinite(mean_loss):
                self.recent.append(mean_loss)
            return False
        self.consecutive_bad += 1
        return self.consecutive_bad >= self.cfg.max_bad_steps


def injected_nan(stage: str, step: int, rollbacks: int) -> bool:
    """Fault injection for tests: NVC1B_INJECT_NAN='STAGE:FIRST-LAST' makes those steps' losses NaN until the
    first rollback (a transient fault)."""
    spec = os.environ.get("NVC1B_INJECT_NAN", "")
    if not spec or rollbacks:
        return False
    name, _, steps = spec.rpartition(":")
    first, _, last = steps.partition("-")
    return name == stage and int(first) <= step <= int(last or first)
