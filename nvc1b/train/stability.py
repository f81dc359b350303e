"""Bad-step detection from the step's global quantities: the loss averaged over all ranks and micro-batches
(all-reduced, so every rank holds the same number and takes the same decision) and DeepSpeed's global gradient
norm (a non-finite norm makes ZeRO skip the step on every rank).

A single rank's micro-batch loss is no basis for a decision: at micro-batch 1 one hard clip at λ = 840 is easily
five times the mean. The spike rule compares the step's loss with the median and the median absolute deviation of
the last ``window`` applied steps, so that a few heavy steps in the window do not move the threshold."""

from __future__ import annotations

import math
import os
import statistics
from collections import deque

from .schedule import Stability

MAD_TO_SIGMA = 1.4826
"""MAD × this estimates the standard deviation of a normal distribution."""


class SpikeDetector:
    """Flags a step whose all-reduced loss is non-finite, or (with ``spikes`` on and ``window`` steps seen) above
    both ``spike_factor`` × median and median + ``spike_mads`` × 1.4826 × MAD of the recent applied steps."""

    def __init__(self, cfg: Stability):
        self.cfg = cfg
        self.recent: deque[float] = deque(maxlen=cfg.window)
        self.consecutive_bad = 0

    def threshold(self) -> float:
        """The step loss above which a step is a spike (inf until the window is full, or with spikes off)."""
        if not self.cfg.spikes or len(self.recent) < self.recent.maxlen:
            return math.inf
        median = statistics.median(self.recent)
        mad = statistics.median(abs(v - median) for v in self.recent)
        return max(self.cfg.spike_factor * median, median + self.cfg.spike_mads * MAD_TO_SIGMA * mad)

    def is_bad(self, step_loss: float) -> bool:
        """``step_loss``: the mean over all ranks and micro-batches of this optimizer step."""
        return not math.isfinite(step_loss) or step_loss > self.threshold()

    def record(self, applied: bool, step_loss: float) -> bool:
        """Account one optimizer step; True when the run should roll back."""
        if applied:
            self.consecutive_bad = 0
            if math.isfinite(step_loss):
                self.recent.append(step_loss)
            return False
        self.consecutive_bad += 1
        return self.consecutive_bad >= self.cfg.max_bad_steps


def injected_nan(stage: str, step: int, rollbacks: int, rank: int = 0) -> bool:
    """Fault injection for tests: NVC1B_INJECT_NAN='STAGE:FIRST-LAST' makes those steps' losses NaN until the
    first rollback (a transient fault); 'STAGE:FIRST-LAST@RANK' does so on rank RANK only."""
    spec = os.environ.get("NVC1B_INJECT_NAN", "")
    if not spec or rollbacks:
        return False
    name, _, steps = spec.rpartition(":")
    steps, _, only = steps.partition("@")
    first, _, last = steps.partition("-")
    return name == stage and int(first) <= step <= int(last or first) and (not only or int(only) == rank)
