"""``nvc1b eval``, ``nvc1b anchors``, ``nvc1b bdrate`` and ``nvc1b report``: thin shells over ``nvc1b.eval``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from ..data.conversions import CONVERSIONS, DEFAULT_CONVERSION
from ..eval.protocol import COLORSPACES, PSNR_KINDS


def number_list(kind: type) -> Callable[[str], list]:
    """argparse type: '0,1,2,3' → [0.0, 1.0, 2.0, 3.0] (or ints)."""

    def parse(text: str) -> list:
        try:
            values = [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of numbers") from None
        if not values:
            raise argparse.ArgumentTypeError("the list is empty")
        return values

    return parse


def crop_size(text: str) -> tuple[int, int] | None:
    """argparse type: 'WxH' → (W, H); 'full' → None."""
    if text.strip().lower() == "full":
        return None
    parts = text.lower().split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not WIDTHxHEIGHT (for example 192x192) or 'full'") from None
    return width, height


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def add_protocol_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, action="append", help="test-set YAML (data/*.yaml); repeat for several")
    p.add_argument("--frames", type=positive, help="frames per sequence (default: the YAML's, 96 for the paper's sets)")
    p.add_argument("--intra-period", type=positive, help="an I-frame every N frames (default: the YAML's, 32)")
    p.add_argument("--colorspace", choices=COLORSPACES, default="rgb",
                   help="rgb: RGB PSNR (Table III); yuv420: a YUV-trained model codes nearest-upsampled 4:4:4, YUV "
                        "PSNR (6Y+U+V)/8 of the 4:2:0 output (Table IV, as DCVC-DC/FM); yuv420-via-rgb: an RGB model "
                        "codes the clamped RGB conversion (its YUV PSNR is capped, see psnr_yuv_cap)")
    p.add_argument("--rgb-conversion", choices=tuple(CONVERSIONS), default=DEFAULT_CONVERSION,
                   help=f"YUV 4:2:0 -> RGB conversion of the test frames (default {DEFAULT_CONVERSION}: DCVC's "
                        "released one; see nvc1b.data.conversions)")
    p.add_argument("--psnr", choices=PSNR_KINDS, default="float",
                   help="the output RD curves and BD-rates measure: float (default, as DCVC publishes) or integer "
                        "(the 8-bit file); both are recorded")
    p.add_argument("--crop", type=crop_size, help="code only the centred WxH window of each sequence (quick looks)")
    p.add_argument("--out", required=True, type=Path, help="results directory (reused: finished points are kept)")
    p.add_argument("--no-ms-ssim", dest="ms_ssim", action="store_false",
                   help="skip MS-SSIM (about 3 s per 1080p frame on a CPU; fast on a GPU)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("eval", help="evaluate a checkpoint on test sets through real bitstreams (bpp, PSNR, MS-SSIM)")
    e.add_argument("--checkpoint", required=True, help="run directory (its newest export) or exported .safetensors")
    e.add_argument("--q-indexes", type=number_list(float), default=[0.0, 1.0, 2.0, 3.0],
                   help="rate points, comma-separated, in 0..3 (default 0,1,2,3)")
    add_protocol_options(e)
    e.add_argument("--device", default="cpu", help="torch device for the networks (default cpu)")
    e.add_argument("--threads", type=positive, help="CPU threads for the networks")
    e.add_argument("--label", help="name of the model in tables and figures (default: run directory and preset)")
    e.add_argument("--channel-share", action="store_true",
                   help="also compute the per-channel bitrate share of ŷ and m̂ (paper Fig. 10) per test set")
    e.set_defaults(func=run_eval)

    a = sub.add_parser("anchors", help="anchor curves with FFmpeg's x265 or x264 (medium, low delay)")
    a.add_argument("encoder", choices=("x265", "x264"))
    a.add_argument("--qps", type=number_list(int), default=[22, 27, 32, 37], help="QPs (default 22,27,32,37)")
    a.add_argument("--ffmpeg", default="ffmpeg", help="FFmpeg executable (ffprobe is looked up next to it)")
    a.add_argument("--scales", type=number_list(int), default=[1],
                   help="downscaling factors, e.g. 1,2,4: a resolution ladder whose curve is the convex hull of "
                        "every (scale, QP) point, for reaching qualities below QP 51 (default 1: full size only)")
    a.add_argument("--jobs", type=positive, default=1, help="FFmpeg runs at a time (default 1; small frames: 2 per 2 cores)")
    add_protocol_options(a)
    a.set_defaults(func=run_anchors)

    b = sub.add_parser("bdrate", help="BD-rate table of results against an anchor (paper Tables III/IV layout)")
    b.add_argument("anchor", help="anchor: results directory, dataset.json or CSV (bpp,psnr[,dataset])")
    b.add_argument("tests", nargs="+", help="results to compare: directories, dataset.json or CSV files")
    b.add_argument("--colorspace", choices=COLORSPACES, help="only the results of this colour space")
    b.add_argument("--metric", choices=("rate", "psnr"), default="rate",
                   help="rate: BD-rate in %% (default); psnr: BD-PSNR in dB at equal rate")
    b.set_defaults(func=run_bdrate)

    r = sub.add_parser("report", help="report.md with RD curves, BD-rate tables and the channel-share figure")
    r.add_argument("--results", nargs="+", required=True, help="results directories of models")
    r.add_argument("--anchors", nargs="*", default=[], help="results directories (or CSVs) of anchors")
    r.add_argument("--channel-share", nargs="*", default=[],
                   help="channel_share.json files (from eval --channel-share)")
    r.add_argument("--title", default="nvc1b evaluation", help="report title")
    r.add_argument("--out", required=True, type=Path, help="folder for report.md and the PNGs")
    r.set_defaults(func=run_report)


def print_summary(result) -> None:
    """The averages of one test set, one line per rate point."""
    s = result.summary
    print(f"{s['label']} on {s['dataset']} ({s['colorspace']}, RGB by {s['rgb_conversion']}, {s['frames']} frames, "
          f"intra period {s['intra_period']}{', crop ' + 'x'.join(map(str, s['crop'])) if s['crop'] else ''}): "
          f"{result.computed} points coded, {result.reused} reused; curves use {s['quality_metric']}")
    print(f"  {'point':>6} {'bpp':>8} {'payload':>8} {'RGB PSNR':>9} {'(float)':>8} {'YUV PSNR':>9} {'(float)':>8} "
          f"{'MS-SSIM':>8} {'enc s/f':>8} {'dec s/f':>8}")
    fmt = lambda v, spec: "—" if v is None else format(v, spec)
    for p in s["points"]:
        print(f"  {p['point']:>6} {p['bpp']:8.4f} {fmt(p['bpp_payload'], '8.4f'):>8} {p['psnr_rgb']:9.2f} "
              f"{fmt(p['psnr_rgb_float'], '8.2f'):>8} {p['psnr_yuv']:9.2f} {fmt(p['psnr_yuv_float'], '8.2f'):>8} "
              f"{fmt(p['ms_ssim'], '8.4f'):>8} {fmt(p['encode_seconds'], '8.3f'):>8} "
              f"{fmt(p['decode_seconds'], '8.3f'):>8}")
    caps = [p["psnr_yuv_cap"] for p in s["points"] if p.get("psnr_yuv_cap") is not None]
    if caps:
        print(f"  note: {s.get('note', '')}; a lossless codec would reach {min(caps):.2f} dB here")
    print(f"  results: {result.folder}")


def run_eval(args: argparse.Namespace) -> int:
    from ..coding.runtime import load_coding_model
    from ..eval.channels import CHANNEL_SHARE_JSON, channel_bitrate_share
    from ..eval.evaluate import evaluate

    codec = load_coding_model(args.checkpoint, args.device)
    if args.channel_share and codec.family != "nvc":
        from ..errors import ConfigError

        raise ConfigError(f"--channel-share: the per-channel share of m̂ and ŷ (Fig. 10) is for nvc models; "
                          f"{codec.source} is a {codec.family} model")
    for dataset in args.dataset:
        result = evaluate(codec, dataset, args.out, args.q_indexes, args.frames, args.intra_period, args.colorspace,
                          args.crop, cpu_threads=args.threads, label=args.label, with_ms_ssim=args.ms_ssim,
                          progress=not args.quiet, rgb_conversion=args.rgb_conversion, psnr=args.psnr)
        print_summary(result)
        if args.channel_share:
            share = channel_bitrate_share(codec, dataset, args.q_indexes, args.frames, args.intra_period,
                                          args.colorspace, args.crop, label=result.summary["label"],
                                          progress=not args.quiet, rgb_conversion=args.rgb_conversion)
            share.save(result.folder / CHANNEL_SHARE_JSON)
            print(f"  per-channel bitrate share: {result.folder / CHANNEL_SHARE_JSON}")
    return 0


def run_anchors(args: argparse.Namespace) -> int:
    from ..eval.anchors import make_anchors

    for dataset in args.dataset:
        result = make_anchors(args.encoder, dataset, args.out, args.qps, args.frames, args.intra_period,
                              args.colorspace, args.crop, ffmpeg=args.ffmpeg, with_ms_ssim=args.ms_ssim,
                              progress=not args.quiet, rgb_conversion=args.rgb_conversion, psnr=args.psnr,
                              scales=args.scales, jobs=args.jobs)
        print_summary(result)
    return 0


def _metrics(anchor: dict, tests: dict) -> set[str]:
    return {c.metric for cs in (anchor, *tests.values()) for c in cs.values() if c.metric}


def psnr_label(colorspace: str, metrics: set[str]) -> str:
    """'RGB PSNR (float output)' and the like, for table titles."""
    base = "RGB PSNR" if colorspace == "rgb" else "YUV PSNR (6Y+U+V)/8"
    kinds = {"float output" if m.endswith("_float") else "integer output" for m in metrics}
    return f"{base} ({', '.join(sorted(kinds))})" if kinds else base


def run_bdrate(args: argparse.Namespace) -> int:
    from ..eval.bdrate import bd_table
    from ..eval.curves import NoResultsError, load_results

    colorspaces = [args.colorspace] if args.colorspace else list(COLORSPACES)
    printed = 0
    for colorspace in colorspaces:
        try:
            anchor = load_results(args.anchor, colorspace)
        except NoResultsError:
            continue
        tests = {}
        for source in args.tests:
            try:
                curves = load_results(source, colorspace)
            except NoResultsError:
                continue
            label = next(iter(curves.values())).label or Path(source).stem
            while label in tests:
                label += "'"
            tests[label] = curves
        if not tests:
            continue
        untyped = all(c.colorspace is None for cs in (anchor, *tests.values()) for c in cs.values())
        if untyped and printed:
            break  # CSV curves only: the same table for every colour space
        metric = "PSNR" if untyped else psnr_label(colorspace, _metrics(anchor, tests))
        table = bd_table(anchor, tests, metric=args.metric)
        title = (f"BD-rate (%) for {metric}; negative = bitrate saving over the anchor" if args.metric == "rate"
                 else f"BD-PSNR (dB) for {metric} at equal rate; positive = better than the anchor")
        print(table.format(title + "\n"))
        print()
        printed += 1
    if not printed:
        from ..eval.results import ResultsError

        raise ResultsError(f"no results to compare: {args.anchor} and {', '.join(args.tests)} share no colour space")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from ..eval.channels import ChannelShare
    from ..eval.report import write_report

    shares = [ChannelShare.load(p) for p in args.channel_share]
    path = write_report(args.out, args.results, args.anchors, shares, title=args.title)
    print(f"report: {path}")
    return 0
