"""The sweep's two connections to the evaluator (``nvc1b eval``, built on its own branch): the command a model's
evaluation runs, and the results loader and BD-rate the report uses. Nothing else in ``nvc1b.sweep`` knows how
evaluation works: a model's evaluation is ``nvc1b eval --checkpoint CKPT --dataset SET.yaml --out DIR``; its
results are whatever the evaluator's loader reads back from a model's evaluation folder, compared by its BD-rate.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import NvcError

Curve = Any
"""One model's rate-distortion results on one test set, as the evaluator's loader returns them. The sweep never
looks inside: it hands pairs of them to ``BdRate``."""
ResultsLoader = Callable[[Path], Mapping[str, Curve]]
"""A model's evaluation folder (<run-root>/<model>/eval) → {test-set name: curve}."""
BdRate = Callable[[Curve, Curve], float]
"""(anchor curve, test curve) → BD-rate in percent (negative = saving); raises when it is undefined."""
Evaluate = Callable[[Path, Path, Path], None]
"""(checkpoint, test-set YAML, output folder) → None; raises when the evaluation fails."""


def eval_command(checkpoint: Path, dataset: Path, out: Path, python: str = sys.executable) -> list[str]:
    """The evaluation of one model on one test set, as the SLURM job and a local sweep run it."""
    return [python, "-m", "nvc1b", "eval", "--checkpoint", str(checkpoint), "--dataset", str(dataset),
            "--out", str(out)]


def run_eval_command(checkpoint: Path, dataset: Path, out: Path) -> None:
    """``Evaluate`` through the ``nvc1b eval`` command, in a child process."""
    proc = subprocess.run(eval_command(checkpoint, dataset, out), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise NvcError(f"nvc1b eval on {dataset.name} failed (exit {proc.returncode}): "
                       f"{lines[-1] if lines else 'no output'}")


def evaluator() -> tuple[ResultsLoader, BdRate]:
    """The evaluator's results loader and BD-rate, for ``sweep report``: the one place that names them."""
    try:
        from ..eval import bd_rate, load_results  # type: ignore[attr-defined]  # provided by the evaluator
    except ImportError:
        raise NvcError(
            "sweep report needs the evaluator (nvc1b.eval with load_results and bd_rate), which this installation "
            "does not have yet; the tables can be built from any curves with nvc1b.sweep.report.make_report"
        ) from None
    return load_results, bd_rate
