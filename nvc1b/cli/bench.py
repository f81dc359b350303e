"""``nvc1b bench``: benchmarks and models of the machine's limits (data, train, codec, memory)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

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

    train = kinds.add_parser("train", help="one cascaded training step: time, frames/s, memory, MFU; --baseline side by side")
    train.add_argument("--preset", required=True)
    train.add_argument("--frames", type=int, default=2, help="frames per clip T (default 2)")
    train.add_argument("--crop", type=int, default=256)
    train.add_argument("--micro-batch", type=int, default=1)
    train.add_argument("--precision", choices=["bf16", "fp32"], help="default: bf16 on GPU, fp32 on CPU")
    train.add_argument("--channels-last", action="store_true")
    train.add_argument("--compile", action="store_true", help="torch.compile the training module")
    train.add_argument("--checkpoint-frames", action="store_true", help="per-frame activation checkpointing")
    train.add_argument("--checkpoint-blocks", action="store_true", help="per-block activation checkpointing")
    train.add_argument("--offload", action="store_true", help="saved tensors in pinned host memory")
    train.add_argument("--baseline", action="store_true", help="also run plain fp32 eager, in this process")
    train.add_argument("--steps", type=int, default=3)
    train.add_argument("--warmup", type=int, default=1)
    train.add_argument("--json", action="store_true")
    train.set_defaults(func=run_train)

    codec = kinds.add_parser("codec", help="encode/decode time per frame through real bitstreams")
    codec.add_argument("--preset", required=True)
    codec.add_argument("--size", default="1920x1080", help="WxH (default 1920x1080)")
    codec.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    codec.add_argument("--threads", type=int, help="CPU threads for the networks")
    codec.add_argument("--frames", type=int, default=3, help="coded frames after a warm-up frame (I, P, P…)")
    codec.add_argument("--json", action="store_true")
    codec.set_defaults(func=run_codec)

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
    memory.add_argument("--check", action="store_true",
                        help="also run each clip for real on this machine (the GPU if there is one, else the CPU "
                             "in fp32) and print measured activations next to the predicted ones")
    memory.add_argument("--json", action="store_true", help="print the table as JSON")
    memory.set_defaults(func=run_memory)

    project = kinds.add_parser("project", help="wall time of a whole schedule on a cluster profile, from measured "
                                               "training throughput (`nvc1b bench train --json` files)")
    project.add_argument("schedule", type=Path, help="schedule YAML (stages/nvc1b_rgb.yaml: intra + Table II)")
    project.add_argument("--cluster", required=True, type=Path, help="cluster profile (cluster/*.yaml): its GPU count")
    project.add_argument("--bench", required=True, type=Path, nargs="+",
                         help="`nvc1b bench train --json` outputs taken on that GPU, one per cascade length T")
    project.add_argument("--clips", type=int, default=None,
                         help="training clips per epoch (default 64612: Vimeo-90k septuplets)")
    project.add_argument("--efficiency", type=float, default=0.9,
                         help="data-parallel scaling efficiency across the profile's GPUs (default 0.9)")
    project.add_argument("--checkpointing", action="store_true",
                         help="add each stage's per-frame checkpointing choice (auto: the memory model, minutes once)")
    project.add_argument("--json", action="store_true")
    project.set_defaults(func=run_project)


def run_data(args: argparse.Namespace) -> int:
    if (args.vimeo is None) != (args.manifest is None):
        raise SystemExit("nvc1b bench data: give both --vimeo and --manifest, or neither")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rates = run_data_benchmark(args.vimeo, args.manifest, args.workers, args.clips, args.batches, args.micro_batch,
                               args.frames, args.crop, work=args.work)
    print(render_table(rates, args.frames, args.crop))
    return 0


def run_train(args: argparse.Namespace) -> int:
    from ..perf.train_bench import TrainSetup, as_json, benchmark_training, render

    _nvc_only(args.preset, "bench train")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = args.precision or ("bf16" if device.type == "cuda" else "fp32")
    setup = TrainSetup(args.preset, args.frames, args.crop, args.micro_batch, precision, args.channels_last,
                       args.compile, args.checkpoint_frames, args.checkpoint_blocks, args.offload)
    results = [benchmark_training(setup, device, args.steps, args.warmup)]
    if args.baseline:
        results.append(benchmark_training(setup.baseline(), device, args.steps, args.warmup))
    print(json.dumps(as_json(results), indent=1) if args.json else render(results))
    return 0


def run_codec(args: argparse.Namespace) -> int:
    from ..data.video import parse_size
    from ..perf.codec_bench import benchmark_codec, render_codec

    rows = benchmark_codec(args.preset, *parse_size(args.size), args.threads, args.device, args.frames)
    print(json.dumps(rows, indent=1) if args.json else render_codec(rows))

def _nvc_only(preset: str, what: str) -> None:
    """The memory model and the training benchmark cover the nvc family's parts only."""
    from ..errors import ConfigError
    from ..families import preset_family

    family = preset_family(preset)
    if family.name != "nvc":
        raise ConfigError(f"{what} --preset {preset}: models the nvc family's parts only; '{preset}' is a "
                          f"{family.name} preset (measure it with nvc1b bench codec or a training run)")


def run_memory(args: argparse.Namespace) -> int:
    import json

    from ..cluster.profile import load_profile
    from ..config.model import load_preset
    from ..errors import ConfigError
    from ..perf.memory import require_checkable
    from ..perf.memory_table import build_memory_table, check_memory_table, render_check, render_memory_table

    _nvc_only(args.preset, "bench memory")
    cluster = load_profile(args.cluster)
    if not cluster.gpu_memory_gb:
        raise ConfigError(f"{args.cluster}: key 'gpu_memory_gb' is not set: no GPU memory to plan for")
    if any(f < 2 for f in args.frames):
        raise ConfigError("--frames: a training clip with P-frames has at least 2 frames")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.check:
        require_checkable(device, args.precision)  # before the table's minutes of meta-device measurement
    table = build_memory_table(load_preset(args.preset), cluster, args.crop, args.precision, args.micro_batch,
                               args.zero_stage, tuple(args.frames))
    checked = check_memory_table(table, device) if args.check else None
    if args.json:
        out = table.as_json()
        if checked is not None:
            out["check"] = {"device": str(device), "rows": [r.as_json() for r in checked]}
        print(json.dumps(out))
    else:
        print(render_memory_table(table))
        if checked is not None:
            print(render_check(checked, device))
    return 0


def run_project(args: argparse.Namespace) -> int:
    from ..cluster.profile import load_profile
    from ..perf.projection import VIMEO_SEPTUPLET_TRAIN_CLIPS, as_json, project_schedule, read_throughputs, render
    from ..train.schedule import load_schedule

    schedule, profile = load_schedule(args.schedule), load_profile(args.cluster)
    throughputs = read_throughputs(args.bench)
    gpus = profile.world_size
    stages = project_schedule(schedule, throughputs, gpus, clips_per_epoch=args.clips or VIMEO_SEPTUPLET_TRAIN_CLIPS,
                              efficiency=args.efficiency, interconnect_gbps=profile.interconnect_gbps)
    plan = None
    if args.checkpointing:
        from ..perf.checkpoint_plan import plan_frames_checkpointing

        plan = plan_frames_checkpointing(schedule, profile)
    print(json.dumps(as_json(stages, gpus, args.efficiency, plan), indent=1) if args.json
          else render(stages, throughputs, gpus, profile.name, args.efficiency, schedule.preset,
                      profile.interconnect_gbps, plan))
    return 0
