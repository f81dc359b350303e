"""``nvc1b bench``: throughput benchmarks (``data`` for now; one sub-command per benchmark)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..data.bench import render_table, run_data_benchmark


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="throughput benchmarks")
    kinds = p.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")

    data = kinds.add_parser("data", help="shard loader vs a plain PNG-folder loader, clips/s and MB/s per worker count")
    data.add_argument("--vimeo", type=Path, help="a Vimeo-layout tree to read (with --manifest: its packed shards)")
    data.add_argument("--manifest", type=Path, help="shards packed from --vimeo")
    data.add_argument("--clips", type=int, default=64, help="synthetic clips to make when no data is given (default 64)")
    data.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="worker counts (default 1 2 4)")
    data.add_argument("--batches", type=int, default=16, help="timed batches per measurement (default 16)")
    data.add_argument("--micro-batch", type=int, default=8, help="clips per batch (default 8)")
    data.add_argument("--frames", type=int, default=7, help="frames per clip (default 7)")
    data.add_argument("--crop", type=int, default=256, help="crop size (default 256)")
    data.add_argument("--work", type=Path, help="folder for the temporary synthetic data (default: system temp)")
    data.set_defaults(func=run_data)


def run_data(args: argparse.Namespace) -> int:
    if (args.vimeo is None) != (args.manifest is None):
        raise SystemExit("nvc1b bench data: give both --vimeo and --manifest, or neither")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rates = run_data_benchmark(args.vimeo, args.manifest, args.workers, args.clips, args.batches, args.micro_batch,
                               args.frames, args.crop, work=args.work)
    print(render_table(rates, args.frames, args.crop))
    return 0
