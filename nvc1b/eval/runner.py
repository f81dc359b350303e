"""The loop every evaluation shares: each sequence of a test set at each rate point, finished points reused,
progress bars over sequences × rate points and over frames, averages written once all points are done."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..data.testsets import TestSequence, TestSet
from .curves import RDCurve, curve_from_summary
from .protocol import Protocol, check_sources
from .results import DATASET_JSON, DatasetFolder, FrameRow, PointResult

log = logging.getLogger(__name__)

PointCoder = Callable[[TestSequence, str, float], tuple[PointResult, list[FrameRow]]]
"""Codes one sequence at one rate point (sequence, point name, rate parameter) → its result and frame rows."""


@dataclass
class EvalResult:
    """What an evaluation of one test set left on disk."""

    folder: Path
    """``OUT/<colorspace>/<DATASET>``."""
    summary: dict[str, Any]
    """The content of ``dataset.json``."""
    computed: int
    """Sequence × rate points coded by this call."""
    reused: int
    """Points found finished on disk and not recomputed."""

    @property
    def curve(self) -> RDCurve:
        return curve_from_summary(self.summary, str(self.folder / DATASET_JSON))


def bar_disabled(progress: bool) -> bool | None:
    """tqdm's ``disable``: off when asked or when NVC1B_PROGRESS=0, else shown on terminals only."""
    return True if not progress or os.environ.get("NVC1B_PROGRESS", "1") == "0" else None


def frame_bar(total: int, desc: str, progress: bool) -> tqdm:
    """The inner progress bar (frames of one sequence at one rate point)."""
    return tqdm(total=total, desc=desc, unit="frame", leave=False, position=1, disable=bar_disabled(progress))


def run_dataset(out: str | Path, test_set: TestSet, protocol: Protocol, codec: dict[str, Any], label: str,
                points: list[tuple[str, float]], code_point: PointCoder, progress: bool = True,
                info: dict[str, Any] | None = None) -> EvalResult:
    """Code every sequence of ``test_set`` at every rate point (name, parameter) with ``code_point`` into
    ``OUT/<colorspace>/<DATASET>``; ``codec`` identifies the coder (a folder holding another coder's or
    protocol's results is an error), ``info`` adds fields to ``dataset.json``."""
    check_sources(test_set, protocol.frames)
    folder = DatasetFolder(out, protocol.colorspace, test_set.name)
    identity = {
        "dataset": test_set.name, "codec": codec, **protocol.identity(),
        "sizes": {s.name: list(protocol.size(s)) for s in test_set.sequences},
    }
    folder.claim(identity)
    results: dict[str, list[PointResult]] = {}
    computed = reused = 0
    total = len(test_set.sequences) * len(points)
    with tqdm(total=total, desc=f"{label} on {test_set.name}", unit="point",
              disable=bar_disabled(progress)) as bar:
        for sequence in test_set.sequences:
            for name, value in points:
                bar.set_postfix_str(f"{sequence.name} {name}")
                result = folder.load_point(sequence.name, name)
                if result is None:
                    result, rows = code_point(sequence, name, value)
                    folder.save_point(result, rows)
                    computed += 1
                    log.info("%s %s %s: %.4f bpp, %.2f dB", label, sequence.name, name, result.bpp,
                             getattr(result, identity["quality_metric"]))
                else:
                    reused += 1
                results.setdefault(sequence.name, []).append(result)
                bar.update()
    if reused:
        log.info("%s on %s: %d of %d points were finished already and reused", label, test_set.name, reused, total)
    summary = folder.write_summary({**identity, "label": label, **(info or {})}, points, results)
    return EvalResult(folder.root, summary, computed, reused)
