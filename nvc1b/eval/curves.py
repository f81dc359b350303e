"""Rate-distortion curves per test set, loaded from a results directory, a ``dataset.json`` or an anchor CSV.

An anchor CSV has a header with at least ``bpp`` and ``psnr`` and one row per rate point; an optional ``dataset``
column holds several test sets in one file, otherwise the file's stem names the test set (``HEVC_B.csv``).
A folder without ``dataset.json`` files is read as a folder of such CSVs. A ``dataset.json`` marked
``"curve": "hull"`` (an anchor's resolution ladder) gives the upper convex hull of its points (``rd_hull``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .protocol import COLORSPACES, quality_metric as protocol_metric
from .results import DATASET_JSON, SCHEMA, ResultsError, read_json


class NoResultsError(ResultsError):
    """A results source holds no curve (of the colour space asked for)."""


@dataclass(frozen=True)
class RDCurve:
    """One coder on one test set: average bpp and PSNR (dB) per rate point, in increasing bpp."""

    dataset: str
    bpp: tuple[float, ...]
    psnr: tuple[float, ...]
    label: str = ""
    """Who made it (a model or an anchor), for legends and tables."""
    colorspace: str | None = None
    """'rgb' (PSNR is RGB PSNR), 'yuv420' or 'yuv420-via-rgb' (PSNR is (6Y+U+V)/8); None when unknown (CSV)."""
    metric: str = ""
    """The results field the PSNR comes from ('psnr_rgb_float': on the float output); empty for CSVs."""
    extra: dict[str, tuple] = field(default_factory=dict, compare=False)
    """Other fields per rate point from a dataset.json: point ('q2', 'qp32'), psnr_rgb, psnr_yuv, ms_ssim,
    encode_seconds, … (in the order of ``bpp``)."""


def rd_hull(bpp: Sequence[float], psnr: Sequence[float]) -> list[int]:
    """Indices, in increasing bpp, of the points on the upper convex hull in (log bpp, PSNR) from the lowest rate
    to the highest PSNR: the best PSNR reachable at each rate by choosing among the points (and time-sharing
    between neighbours on a log-rate scale). Points above the highest PSNR's rate are dominated and left out."""
    order = sorted(range(len(bpp)), key=lambda i: (bpp[i], -psnr[i]))
    if not order:
        return []
    best = max(order, key=lambda i: (psnr[i], -bpp[i]))
    hull: list[int] = []
    for i in order[: order.index(best) + 1]:
        if hull and psnr[i] <= psnr[hull[-1]]:
            continue  # no better than a cheaper point
        while len(hull) >= 2:
            (x0, y0), (x1, y1) = [(math.log(bpp[j]), psnr[j]) for j in hull[-2:]]
            x2, y2 = math.log(bpp[i]), psnr[i]
            if (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0) >= 0:  # the middle point is on or below the chord
                hull.pop()
            else:
                break
        hull.append(i)
    return hull


def curve_from_summary(summary: dict[str, Any], source: str = "") -> RDCurve:
    """The RD curve of a parsed ``dataset.json`` (its convex hull when it is marked ``"curve": "hull"``)."""
    try:
        if summary.get("schema") != SCHEMA:
            raise ResultsError(
                f"{source}: not an nvc1b results file (schema {summary.get('schema')!r}, expected {SCHEMA})"
            )
        metric = summary["quality_metric"]
        points = sorted(summary["points"], key=lambda p: p["bpp"])
        if summary.get("curve") == "hull":
            points = [points[i] for i in rd_hull([float(p["bpp"]) for p in points], [float(p[metric]) for p in points])]
        extra = {k: tuple(p.get(k) for p in points) for k in points[0] if k != "bpp"} if points else {}
        return RDCurve(
            dataset=summary["dataset"], bpp=tuple(float(p["bpp"]) for p in points),
            psnr=tuple(float(p[metric]) for p in points), label=summary.get("label", ""),
            colorspace=summary.get("colorspace"), metric=metric, extra=extra,
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ResultsError(f"{source}: malformed results JSON ({exc!r})") from None


def read_curve_csv(path: str | Path, label: str = "") -> dict[str, RDCurve]:
    """Curves of an anchor CSV (``bpp,psnr`` [, ``dataset``]), by test set."""
    path = Path(path)
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
            header = rows[0].keys() if rows else set()
    except FileNotFoundError:
        raise ResultsError(f"{path}: file not found") from None
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: unreadable CSV ({exc})") from None
    missing = {"bpp", "psnr"} - set(header)
    if not rows or missing:
        raise ResultsError(f"{path}: an anchor CSV needs columns bpp,psnr and at least one row"
                           + (f" (missing {', '.join(sorted(missing))})" if rows else ""))
    points: dict[str, list[tuple[float, float]]] = {}
    for line, row in enumerate(rows, start=2):
        try:
            bpp, psnr = float(row["bpp"]), float(row["psnr"])
        except (TypeError, ValueError):
            raise ResultsError(f"{path}: line {line}: bpp and psnr must be numbers") from None
        if not (bpp > 0 and math.isfinite(bpp) and math.isfinite(psnr)):
            raise ResultsError(f"{path}: line {line}: need a positive bpp and a finite psnr, got {bpp}, {psnr}")
        points.setdefault((row.get("dataset") or path.stem).strip(), []).append((bpp, psnr))
    label = label or path.stem
    return {
        name: RDCurve(name, tuple(b for b, _ in sorted(p)), tuple(q for _, q in sorted(p)), label)
        for name, p in points.items()
    }


def load_results(source: str | Path, colorspace: str | None = None, label: str | None = None) -> dict[str, RDCurve]:
    """RD curves by test set from a results directory (every ``dataset.json`` under it), one ``dataset.json``,
    an anchor CSV or a folder of anchor CSVs. ``colorspace`` keeps only rgb or yuv420 results; it must be given
    when the directory holds both for one test set. ``label`` replaces the curves' labels."""
    path = Path(source)
    if not path.exists():
        raise ResultsError(f"{path}: results not found")
    if path.suffix.lower() == ".csv":
        curves = read_curve_csv(path)
    elif path.is_file():
        curves = {(c := curve_from_summary(read_json(path), str(path))).dataset: c}
    else:
        curves = _load_directory(path, colorspace)
    if colorspace is not None:
        curves = {k: c for k, c in curves.items() if c.colorspace in (None, colorspace)}
    if not curves:
        raise NoResultsError(f"{path}: no {colorspace + ' ' if colorspace else ''}results found")
    if label:
        curves = {k: RDCurve(c.dataset, c.bpp, c.psnr, label, c.colorspace, c.metric, c.extra)
                  for k, c in curves.items()}
    return curves


def _load_directory(path: Path, colorspace: str | None) -> dict[str, RDCurve]:
    summaries = sorted(path.rglob(DATASET_JSON))
    if not summaries:
        curves: dict[str, RDCurve] = {}
        for csv_path in sorted(path.glob("*.csv")):
            curves.update(read_curve_csv(csv_path, label=path.name))
        return curves
    curves = {}
    for summary_path in summaries:
        curve = curve_from_summary(read_json(summary_path), str(summary_path))
        if colorspace is not None and curve.colorspace != colorspace:
            continue
        if curve.dataset in curves:
            raise ResultsError(
                f"{path}: holds two results for {curve.dataset} ({curves[curve.dataset].colorspace} and "
                f"{curve.colorspace}); choose one with --colorspace"
            )
        curves[curve.dataset] = curve
    return curves


def quality_metric(colorspace: str | None) -> str:
    """Name of the PSNR a colour space's curves use by default ('psnr_rgb_float', 'psnr_yuv_float'); 'psnr' when
    unknown."""
    return protocol_metric(colorspace) if colorspace in COLORSPACES else "psnr"
