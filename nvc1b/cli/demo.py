"""``nvc1b demo``: data, training, evaluation, anchors and report in one command (``make demo``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .evaluation import crop_size, number_list, positive


def register(sub: argparse._SubParsersAction) -> None:
    from ..demo import DEMO_CROP, DEMO_FRAMES, DEMO_LADDER_QPS, DEMO_LADDER_SCALES, DEMO_QPS, DEMO_SCHEDULE

    p = sub.add_parser("demo", help="train the tiny demo model, evaluate it on the synthetic clips, write a report")
    p.add_argument("--run-dir", required=True, type=Path, help="run directory (resumed if it has checkpoints)")
    p.add_argument("--schedule", default=str(DEMO_SCHEDULE), help="training schedule (default stages/demo.yaml)")
    p.add_argument("--max-steps", type=positive, help="end training after N optimizer steps in total (quick tries)")
    p.add_argument("--frames", type=positive, default=DEMO_FRAMES, help=f"frames per sequence (default {DEMO_FRAMES})")
    p.add_argument("--crop", type=crop_size, default=DEMO_CROP,
                   help=f"centred window coded, WxH or 'full' (default {DEMO_CROP[0]}x{DEMO_CROP[1]})")
    p.add_argument("--q-indexes", type=number_list(float), default=[0.0, 1.0, 2.0, 3.0], help="rate points (0,1,2,3)")
    p.add_argument("--qps", type=number_list(int), default=list(DEMO_QPS),
                   help=f"x265 QPs (default {','.join(map(str, DEMO_QPS))})")
    p.add_argument("--ladder-scales", type=number_list(int), default=list(DEMO_LADDER_SCALES),
                   help="x265 resolution ladder's downscaling factors; 1 alone: no ladder "
                        f"(default {','.join(map(str, DEMO_LADDER_SCALES))})")
    p.add_argument("--ladder-qps", type=number_list(int), default=list(DEMO_LADDER_QPS),
                   help=f"x265 ladder's QPs (default {','.join(map(str, DEMO_LADDER_QPS))})")
    p.add_argument("--data-root", type=Path, help="built-in dataset folder (default $NVC1B_DATA or ~/.cache/nvc1b)")
    p.add_argument("--quiet", action="store_true", help="no evaluation progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import format_bd, run_demo
    from .evaluation import print_summary

    result = run_demo(args.run_dir, args.schedule, args.max_steps, args.frames, args.crop, args.q_indexes, args.qps,
                      args.data_root, progress=not args.quiet, ladder_scales=args.ladder_scales,
                      ladder_qps=args.ladder_qps)
    print_summary(result.evaluation)
    if result.anchors is not None:
        print_summary(result.anchors)
        print(f"against x265: BD-rate {format_bd(result.bd_rate_vs_x265, '%', 'PSNR')}, "
              f"BD-PSNR {format_bd(result.bd_psnr_vs_x265, ' dB', 'rate')}")
        if result.ladder is not None:
            print_summary(result.ladder)
            print(f"against the x265 ladder (convex hull): BD-rate {format_bd(result.bd_rate_vs_ladder, '%', 'PSNR')}, "
                  f"BD-PSNR {format_bd(result.bd_psnr_vs_ladder, ' dB', 'rate')}")
    else:
        print("no x265 anchors (FFmpeg not found)")
    print("where the time went (wall seconds):")
    for name, seconds in result.times.rows():
        print(f"  {name:<32} {seconds:7.1f}")
    print(f"demo done in {result.seconds:.0f} s (training: {result.training})")
    print(f"report: {result.report}")
    return 0
