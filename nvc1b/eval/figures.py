"""Figures as PNG files (matplotlib's Agg canvas, no display, no pyplot state): RD curves per test set
(paper Figs. 7, 8) and the sorted per-channel bitrate share of ŷ and m̂ (paper Fig. 10)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .channels import ChannelShare
from .curves import RDCurve

DPI = 120
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
PSNR_LABEL = {"rgb": "RGB PSNR (dB)", "yuv420": "YUV PSNR (6Y+U+V)/8 (dB)",
              "yuv420-via-rgb": "YUV PSNR (6Y+U+V)/8 (dB), via RGB"}


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI)
    return path


def plot_rd_curves(curves: Sequence[RDCurve], path: str | Path, title: str | None = None) -> Path:
    """One test set's RD curves (bpp vs PSNR, one line per coder) as a PNG at ``path``."""
    if not curves:
        raise ValueError("no curves to plot")
    fig = Figure(figsize=(6.0, 4.5))
    ax = fig.add_subplot()
    for i, curve in enumerate(curves):
        ax.plot(curve.bpp, curve.psnr, marker=MARKERS[i % len(MARKERS)], linewidth=1.5, markersize=5,
                label=curve.label or f"curve {i + 1}")
    colorspaces = {c.colorspace for c in curves} - {None}
    ax.set_xlabel("bpp")
    ax.set_ylabel(PSNR_LABEL.get(colorspaces.pop(), "PSNR (dB)") if len(colorspaces) == 1 else "PSNR (dB)")
    ax.set_title(title or curves[0].dataset)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)  # out of the way of a curve low on the right
    fig.tight_layout()
    return _save(fig, path)


def plot_channel_share(shares: Sequence[ChannelShare], path: str | Path, top: int = 100) -> Path:
    """Fig. 10: the per-channel bitrate share of ŷ_t (eq. 7) and m̂_t (eq. 8), sorted, the ``top`` largest channels,
    one line per model."""
    if not shares:
        raise ValueError("no channel shares to plot")
    fig = Figure(figsize=(10.0, 4.0))
    axes = fig.subplots(1, 2)
    for ax, latent, name in zip(axes, ("y", "m"), ("contextual latent ŷ (CR, eq. 7)", "motion latent m̂ (MR, eq. 8)"),
                                strict=True):
        for i, share in enumerate(shares):
            values = share.sorted(latent)[:top] * 100.0
            ax.plot(range(1, len(values) + 1), values, marker=MARKERS[i % len(MARKERS)], markersize=3,
                    linewidth=1.0, label=share.label)
        ax.set_xlabel("channel, by decreasing share")
        ax.set_ylabel("share of the bits (%)")
        ax.set_title(name, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    first = shares[0]
    fig.suptitle(f"Per-channel bitrate share on {first.dataset} (P-frames, estimated bits, "
                 f"averaged over {first.sequences} sequences × {len(first.q_indexes)} rate points)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
