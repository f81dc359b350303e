"""Evaluation by the paper's test protocol (Section V): low delay, 96 frames, intra period 32, RGB and YUV 4:2:0
test sets, bpp from real bitstreams; BD-rate, anchors, RD curves and the analysis figures.

Library functions (the CLI commands ``eval``, ``anchors``, ``bdrate``, ``report`` and ``demo`` are shells over them)::

    from nvc1b.eval import evaluate, make_anchors, load_results, bd_rate, bd_table, write_report

    result = evaluate("runs/demo", "data/hevc_b.yaml", "results/demo", q_indexes=(0, 1, 2, 3), colorspace="rgb")
    result.summary                     # dataset.json as a dict; result.curve: its RDCurve; result.reused: points kept
    x265 = make_anchors("x265", "data/hevc_b.yaml", "results/x265")      # needs FFmpeg with libx265
    anchor = load_results("results/x265", colorspace="rgb")          # {'HEVC_B': RDCurve(...)}
    model = load_results("results/demo", colorspace="rgb")
    bd_rate(anchor["HEVC_B"], model["HEVC_B"])                      # percent; negative = bits saved
    print(bd_table(anchor, {"demo": model}).format())               # Table III/IV layout, with the average

``bd_rate(anchor, test) -> float`` takes two ``RDCurve`` or two ``(bpp values, PSNR values)`` pairs and returns the
Bjøntegaard delta rate in percent: log-rate interpolated over PSNR with PCHIP on each curve, integrated exactly
over the PSNR range both cover; NaN when they share none (``bd_psnr`` is the dB counterpart).
``load_results(source, colorspace=None, label=None) -> dict[str, RDCurve]`` reads a results directory (every
``dataset.json`` below it), one ``dataset.json``, an anchor CSV (``bpp,psnr[,dataset]``) or a folder of CSVs, and
returns one curve per test set; the PSNR is RGB PSNR for ``rgb`` results and (6Y+U+V)/8 for ``yuv420`` ones.

Results directory (the neural codec's and the anchors' alike; see ``results``)::

    OUT/<colorspace>/<DATASET>/run.json, dataset.json, dataset.csv, sequences/<SEQ>/<POINT>.json|.csv

``dataset.json`` (schema ``nvc1b.eval/1``): ``dataset``, ``label``, ``codec`` ({kind: nvc1b, preset, fingerprint}
or {kind: x265|x264, preset, ffmpeg}), ``frames``, ``intra_period``, ``colorspace``, ``quality_metric``
('psnr_rgb' or 'psnr_yuv'), ``crop``, ``sizes``, then ``points``: per rate point, in increasing bpp, ``point``
('q2', 'qp32'), ``rate_parameter``, ``sequences`` (how many were averaged), and the means over sequences of
``bpp``, ``psnr_rgb``, ``psnr_yuv``, ``psnr_y``, ``psnr_u``, ``psnr_v``, ``ms_ssim`` (null for frames under 161
pixels a side), ``encode_seconds`` and ``decode_seconds`` (per frame); and ``sequences``: per sequence the list
of its point results (the same fields per sequence, plus ``bytes``, ``width``, ``height``, ``frames``, ``bits``
per latent and ``decoder_matches``). Neural-codec files add ``checkpoint``, ``device`` and ``dataset_yaml``.
"""

from .anchors import make_anchors
from .bdrate import BDTable, bd_psnr, bd_rate, bd_table
from .channels import ChannelShare, channel_bitrate_share
from .curves import RDCurve, load_results
from .evaluate import evaluate
from .figures import plot_channel_share, plot_rd_curves
from .reference import paper_tables
from .report import write_report
from .runner import EvalResult

__all__ = [
    "BDTable",
    "ChannelShare",
    "EvalResult",
    "RDCurve",
    "bd_psnr",
    "bd_rate",
    "bd_table",
    "channel_bitrate_share",
    "evaluate",
    "load_results",
    "make_anchors",
    "paper_tables",
    "plot_channel_share",
    "plot_rd_curves",
    "write_report",
]
