"""``report.md`` with its PNGs: per colour space and test set the RD curves of every model and anchor, their
numbers, BD-rate tables against each anchor (laid out like the paper's Tables III/IV, which follow for reference),
and the per-channel bitrate share figure."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from .bdrate import CurveError, bd_table, order_datasets
from .channels import ChannelShare
from .curves import NoResultsError, RDCurve, load_results
from .figures import plot_channel_share, plot_rd_curves
from .protocol import COLORSPACES
from .reference import paper_tables
from .results import ResultsError, write_atomic

log = logging.getLogger(__name__)

SECTION = {"rgb": "RGB test sets (RGB PSNR, as the paper's Table III)",
           "yuv420": "YUV 4:2:0 test sets (YUV PSNR (6Y+U+V)/8, as the paper's Table IV)",
           "yuv420-via-rgb": "YUV 4:2:0 test sets coded by RGB models (YUV PSNR (6Y+U+V)/8, capped by the clamped RGB)"}
CHANNEL_SHARE_PNG = "channel_share.png"
BD_RATE_NOTE = ("Negative: fewer bits than the anchor for the same PSNR (Bjøntegaard, log-rate interpolated over PSNR "
                "with piecewise cubic Hermite polynomials, over the PSNR range both curves cover).")
PAPER_NOTE = ("NVC-1B and other codecs on the paper's test sets (HEVC B–E, UVG, MCL-JCV, 96 frames) against VTM-13.2; "
              "not comparable with results on other test sets or against other anchors.")
BD_PSNR_NOTE = "Positive: higher PSNR than the anchor at the same rate, over the rate range both curves cover."


def _curves(sources: Sequence[str | Path], colorspace: str) -> dict[str, dict[str, RDCurve]]:
    """Label → test set → curve of each source that has results in ``colorspace`` (labels made unique)."""
    out: dict[str, dict[str, RDCurve]] = {}
    for source in sources:
        try:
            curves = load_results(source, colorspace)
        except NoResultsError:
            continue
        label = next(iter(curves.values())).label or Path(source).name
        unique, n = label, 2
        while unique in out:
            unique, n = f"{label} #{n}", n + 1
        out[unique] = {k: replace(c, label=unique) for k, c in curves.items()}
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _number(value: float | None, digits: int) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _numbers_table(curves: Sequence[RDCurve]) -> list[str]:
    lines = ["| coder | rate point | bpp | bpp w/o container | RGB PSNR float / 8-bit | YUV PSNR float / integer "
             "| MS-SSIM | encode s/frame | decode s/frame |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for curve in curves:
        for i, bpp in enumerate(curve.bpp):
            get = lambda key: curve.extra[key][i] if key in curve.extra else None  # noqa: B023 - used at once
            lines.append(
                f"| {curve.label} | {get('point') or '—'} | {bpp:.4f} | {_number(get('bpp_payload'), 4)} | "
                f"{_number(get('psnr_rgb_float'), 2)} / {_number(get('psnr_rgb'), 2)} | "
                f"{_number(get('psnr_yuv_float'), 2)} / {_number(get('psnr_yuv'), 2)} | {_number(get('ms_ssim'), 4)} | "
                f"{_number(get('encode_seconds'), 3)} | {_number(get('decode_seconds'), 3)} |"
            )
    return lines


def _measured_on(curves: Sequence[RDCurve]) -> str:
    """The sentence saying which PSNR the section's curves and BD-rates use."""
    metrics = sorted({c.metric for c in curves if c.metric})
    if not metrics:
        return "Curves plot the PSNR of the given CSVs."
    kinds = ", ".join(f"`{m}` ({'float output, as DCVC publishes' if m.endswith('_float') else 'integer output'})"
                      for m in metrics)
    return (f"Curves and BD-rates use {kinds}; the tables give both the float and the integer output's PSNR, and "
            "the rate with and without the container.")


def _colorspace_section(out: Path, colorspace: str, models: dict[str, dict[str, RDCurve]],
                        anchors: dict[str, dict[str, RDCurve]]) -> list[str]:
    coders = {**anchors, **models}
    datasets = order_datasets({d for curves in coders.values() for d in curves})
    lines = [f"## {SECTION[colorspace]}", "",
             _measured_on([c for curves in coders.values() for c in curves.values()]), ""]
    for dataset in datasets:
        curves = [c[dataset] for c in coders.values() if dataset in c]
        png = plot_rd_curves(curves, out / f"rd_{colorspace}_{_slug(dataset)}.png",
                             f"{dataset} ({'RGB' if colorspace == 'rgb' else 'YUV 4:2:0'})")
        lines += [f"### {dataset}", "", f"![RD curves on {dataset}]({png.name})", "", *_numbers_table(curves), ""]
    for anchor_label, anchor_curves in anchors.items():
        tests = {label: c for label, c in coders.items() if label != anchor_label}
        if not tests:
            continue
        try:
            rate = bd_table(anchor_curves, tests, anchor_label)
            psnr = bd_table(anchor_curves, tests, anchor_label, "psnr")
        except CurveError as exc:
            lines += [f"No BD-rate against {anchor_label}: {exc}", ""]
            continue
        lines += [f"### BD-rate (%) against {anchor_label}", "", BD_RATE_NOTE, "", rate.format(), "",
                  f"### BD-PSNR (dB) against {anchor_label}", "", BD_PSNR_NOTE, "", psnr.format(), ""]
    paper = paper_tables().tables["rgb" if colorspace == "rgb" else "yuv420"]
    lines += [f"### For reference: the paper's {paper.title}", "", PAPER_NOTE, "", paper.format(), ""]
    return lines


def write_report(out: str | Path, models: Sequence[str | Path], anchors: Sequence[str | Path] = (),
                 channel_shares: Sequence[ChannelShare] = (), title: str = "nvc1b evaluation",
                 notes: Sequence[str] = ()) -> Path:
    """Write ``out/report.md`` and its PNGs from results directories (or ``dataset.json`` / CSV curves) of
    models and anchors, and per-channel shares; returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", "", *notes, ""] if notes else [f"# {title}", ""]
    sections = 0
    for colorspace in COLORSPACES:
        model_curves, anchor_curves = _curves(models, colorspace), _curves(anchors, colorspace)
        if model_curves or anchor_curves:
            lines += _colorspace_section(out, colorspace, model_curves, anchor_curves)
            sections += 1
    if not sections:
        raise ResultsError(f"no results to report in {', '.join(str(s) for s in [*models, *anchors]) or 'nothing'}")
    if channel_shares:
        png = plot_channel_share(channel_shares, out / CHANNEL_SHARE_PNG)
        first = channel_shares[0]
        caption = (
            "Share of the P-frame bits carried by each channel of the contextual latent ŷ (CR) and the motion latent "
            f"m̂ (MR), per sequence, averaged over {first.sequences} sequences of {first.dataset} and "
            f"q ∈ {{{', '.join(f'{q:g}' for q in first.q_indexes)}}}, sorted. Bits are the model's estimates in an "
            "evaluation-mode pass (the entropy coder's sizes agree to within a fraction of a percent)."
        )
        lines += ["## Per-channel bitrate share (paper Fig. 10, equations 7 and 8)", "",
                  f"![per-channel bitrate share]({png.name})", "", caption, ""]
        for share in channel_shares:
            top = share.sorted("y")
            lines.append(f"- {share.label}: the 10% largest ŷ channels carry "
                         f"{100 * top[: max(1, len(top) // 10)].sum():.1f}% of the ŷ bits, the largest m̂ channel "
                         f"{100 * share.sorted('m')[0]:.1f}% of the m̂ bits.")
        lines.append("")
    path = out / "report.md"
    write_atomic(path, "\n".join(lines).rstrip() + "\n")
    log.info("report written to %s", path)
    return path
