"""Bjøntegaard deltas between RD curves, and BD-rate tables laid out like the paper's Tables III and IV.

BD-rate follows the practice of the video coding community (VCEG-M33 with the piecewise cubic interpolation of
the JVET common-test-condition sheets): log-rate is interpolated over PSNR with a monotone piecewise cubic
Hermite interpolant (scipy's PCHIP) on each curve, both are integrated exactly over the PSNR range the two curves
share, and the mean log-rate difference d gives BD-rate = (eᵈ − 1)·100 %. Negative is a saving of the test over
the anchor. Curves with no PSNR range in common have no BD-rate (NaN).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator

from ..errors import NvcError
from .curves import RDCurve

log = logging.getLogger(__name__)

PAPER_ORDER = ("HEVC_B", "HEVC_C", "HEVC_D", "HEVC_E", "UVG", "MCL-JCV")
"""Column order of the paper's tables; other test sets follow by name."""

Curve = RDCurve | tuple[Sequence[float], Sequence[float]]
"""An RDCurve or a pair (bpp values, PSNR values)."""


class CurveError(NvcError):
    """An RD curve cannot enter a Bjøntegaard delta (too few points, repeated PSNR, non-positive rate)."""


def _points(curve: Curve, role: str) -> tuple[np.ndarray, np.ndarray]:
    """(PSNR increasing, natural log of bpp) of a curve; rejects what PCHIP cannot interpolate."""
    bpp, psnr = (curve.bpp, curve.psnr) if isinstance(curve, RDCurve) else curve
    name = f"{role} curve" + (f" '{curve.label}' on {curve.dataset}" if isinstance(curve, RDCurve) else "")
    bpp, psnr = np.asarray(bpp, dtype=np.float64), np.asarray(psnr, dtype=np.float64)
    if bpp.shape != psnr.shape or bpp.ndim != 1:
        raise CurveError(f"{name}: {bpp.size} bpp values but {psnr.size} PSNR values")
    if bpp.size < 2:
        raise CurveError(f"{name}: needs at least 2 rate points, has {bpp.size}")
    if not (np.all(bpp > 0) and np.all(np.isfinite(bpp)) and np.all(np.isfinite(psnr))):
        raise CurveError(f"{name}: bpp must be positive and PSNR finite")
    order = np.argsort(psnr)
    psnr, rate = psnr[order], np.log(bpp[order])
    if np.any(np.diff(psnr) <= 0):
        raise CurveError(f"{name}: two rate points have the same PSNR ({psnr[np.argmin(np.diff(psnr))]:.4f} dB)")
    return psnr, rate


def _mean_difference(x_a: np.ndarray, y_a: np.ndarray, x_b: np.ndarray, y_b: np.ndarray) -> float:
    """Mean of PCHIP(y_b) − PCHIP(y_a) over the x range both cover; NaN if they share none."""
    lo, hi = max(x_a[0], x_b[0]), min(x_a[-1], x_b[-1])
    if not hi > lo:
        return math.nan
    area_a = PchipInterpolator(x_a, y_a).integrate(lo, hi)
    area_b = PchipInterpolator(x_b, y_b).integrate(lo, hi)
    return float((area_b - area_a) / (hi - lo))


def bd_rate(anchor: Curve, test: Curve) -> float:
    """BD-rate in percent of ``test`` against ``anchor`` (negative: fewer bits for the same PSNR); NaN when the
    curves' PSNR ranges do not overlap."""
    psnr_a, rate_a = _points(anchor, "anchor")
    psnr_t, rate_t = _points(test, "test")
    diff = _mean_difference(psnr_a, rate_a, psnr_t, rate_t)
    return math.expm1(diff) * 100.0 if math.isfinite(diff) else math.nan


def bd_psnr(anchor: Curve, test: Curve) -> float:
    """BD-PSNR in dB of ``test`` against ``anchor`` (positive: higher PSNR at the same rate); NaN without overlap."""
    psnr_a, rate_a = _points(anchor, "anchor")
    psnr_t, rate_t = _points(test, "test")
    order_a, order_t = np.argsort(rate_a), np.argsort(rate_t)
    if np.any(np.diff(rate_a[order_a]) <= 0) or np.any(np.diff(rate_t[order_t]) <= 0):
        raise CurveError("BD-PSNR needs distinct rates on each curve")
    return _mean_difference(rate_a[order_a], psnr_a[order_a], rate_t[order_t], psnr_t[order_t])


@dataclass
class BDTable:
    """BD-rates (%) — or BD-PSNRs (dB) — of several coders against one anchor, per test set, as in the paper's
    Tables III and IV."""

    anchor: str
    datasets: list[str]
    rows: dict[str, dict[str, float]]
    """Coder label → test set → value (NaN: the curves do not overlap, absent: not evaluated on that set)."""
    metric: str = "rate"
    """'rate' (BD-rate, %) or 'psnr' (BD-PSNR, dB)."""

    def average(self, label: str) -> float:
        """Mean over the test sets where the coder has a BD-rate (NaN if none)."""
        values = [v for v in self.rows[label].values() if math.isfinite(v)]
        return sum(values) / len(values) if values else math.nan

    def format(self, title: str = "") -> str:
        """A Markdown table: one row per coder, one column per test set, then the average."""
        head = [f"anchor: {self.anchor}"] + self.datasets + ["Average"]
        lines = [title] if title else []
        lines += ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
        for label, row in self.rows.items():
            digits = 1 if self.metric == "rate" else 2
            cells = [_cell(row.get(d), digits) for d in self.datasets] + [_cell(self.average(label), digits)]
            lines.append("| " + " | ".join([label] + cells) + " |")
        if any(not math.isfinite(v) for row in self.rows.values() for v in row.values()):
            shared = "PSNR" if self.metric == "rate" else "rate"
            lines.append(f"\n'n/a': the curves share no {shared} range; the average leaves those sets out.")
        return "\n".join(lines)


def _cell(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}"


def order_datasets(names: set[str] | list[str]) -> list[str]:
    """The paper's column order first, then the other test sets by name."""
    return [d for d in PAPER_ORDER if d in names] + sorted(set(names) - set(PAPER_ORDER))


def pair_curves(anchor: Mapping[str, RDCurve], test: Mapping[str, RDCurve]) -> dict[str, tuple[RDCurve, RDCurve]]:
    """Anchor and test curves of the same test set; a single curve on each side pairs whatever its name
    (an anchor CSV named after its coder against one test set's results)."""
    common = set(anchor) & set(test)
    if not common and len(anchor) == 1 and len(test) == 1:
        (a,), (t,) = anchor.values(), test.values()
        return {t.dataset: (a, t)}
    return {name: (anchor[name], test[name]) for name in order_datasets(common)}


def bd_table(anchor: Mapping[str, RDCurve], tests: Mapping[str, Mapping[str, RDCurve]],
             anchor_label: str | None = None, metric: str = "rate") -> BDTable:
    """BD-rate (``metric`` 'rate') or BD-PSNR ('psnr') of each coder in ``tests`` (label → curves by test set)
    against ``anchor`` on every common set."""
    delta = {"rate": bd_rate, "psnr": bd_psnr}[metric]
    rows: dict[str, dict[str, float]] = {}
    datasets: set[str] = set()
    for label, curves in tests.items():
        pairs = pair_curves(anchor, curves)
        if not pairs:
            raise CurveError(
                f"'{label}' and the anchor share no test set (anchor: {', '.join(sorted(anchor))}; "
                f"'{label}': {', '.join(sorted(curves))})"
            )
        rows[label] = {}
        for name, (a, t) in pairs.items():
            rows[label][name] = delta(a, t)
            if not math.isfinite(rows[label][name]):
                log.info("%s on %s: no %s range in common with the anchor, no BD-%s", label, name,
                         "PSNR" if metric == "rate" else "rate", metric.replace("psnr", "PSNR"))
        datasets.update(pairs)
    name = anchor_label or next(iter(anchor.values())).label or "anchor"
    return BDTable(name, order_datasets(datasets), rows, metric)
