"""``nvc1b bench``: benchmarks and models of the machine's limits (``data``, ``memory``)."""

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

    memory = kinds.add_parser("memory", help="memory per GPU of training a preset on a cluster profile: longest "
                                             "cascade and micro-batch that fit (meta device, no GPU needed)")
    memory.add_argument("--preset", required=True, help="preset name or preset YAML path")
    memory.add_argument("--cluster", required=True, type=Path, help="cluster profile (cluster/*.yaml)")
    memory.add_argument("--crop", type=int, default=256, help="crop size (default 256)")
    memory.add_argument("--precision", choices=("bf16", "fp32"), default="bf16", help="default bf16 (autocast)")
    memory.add_argument("--micro-batch", type=int, help="clips per GPU (default: the profile's, else 1)")
    memory.add_argument("--zero-stage", type=int, choices=(1, 2, 3), help="default: the profile's, else 2")
    memory.add_argument("--frames", type=int, nargs="+", default=[2, 3, 4, 6, 8, 16, 32],
                        help="cascade lengths to tabulate (default 2 3 4 6 8 16 32)")
    memory.add_argument("--json", action="store_true", help="print the table as JSON")
    memory.set_defaults(func=run_memory)


def run_data(args: argparse.Namespace) -> int:
    if (args.vimeo is None) != (args.manifest is None):
        raise SystemExit("nvc1b bench data: give both --vimeo and --manifest, or neither")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rates = run_data_benchmark(args.vimeo, args.manifest, args.workers, args.clips, args.batches, args.micro_batch,
                               args.frames, args.crop, work=args.work)
    print(render_table(rates, args.frames, args.crop))
    return 0


def run_memory(args: argparse.Namespace) -> int:
    import json

    from ..cluster.profile import load_profile
    from ..config.model import load_preset
    from ..errors import ConfigError
    from ..perf.memory_table import build_memory_table, render_memory_table

    cluster = load_profile(args.cluster)
    if not cluster.gpu_memory_gb:
        raise ConfigError(f"{args.cluster}: key 'gpu_memory_gb' is not set: no GPU memory to plan for")
    if any(f < 2 for f in args.frames):
        raise ConfigError("--frames: a training clip with P-frames has at least 2 frames")
    table = build_memory_table(load_preset(args.preset), cluster, args.crop, args.precision, args.micro_batch,
                               args.zero_stage, tuple(args.frames))
    print(json.dumps(table.as_json()) if args.json else render_memory_table(table))
    return 0
