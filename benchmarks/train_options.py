"""Every training-speed option of `nvc1b bench train`, one at a time, against plain fp32 eager, in one process.

Each round runs the baseline, every option, and the baseline again; with ``--rounds N`` the rounds repeat and
every row reports the median step time over its runs with the spread (min–max), so drift over the run (thermal,
other load) shows instead of passing for a speed-up. Speed-ups and memory ratios are taken against the median
baseline. Options that do nothing on the device at hand are still run, so the table says so.

    python benchmarks/train_options.py --preset tiny --frames 4 --crop 128 [--rounds 3] [--compile] [--json out.json]

On a GPU add ``--precision bf16`` to put bf16 autocast under every option (the baseline stays fp32 eager).
``--compile`` adds a torch.compile row; on a 2-core CPU it compiles for ~5 minutes.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import replace

import torch

from nvc1b.perf.train_bench import TrainResult, TrainSetup, as_json, benchmark_training

OPTIONS = {
    "channels_last": {"channels_last": True},
    "ckpt-frames": {"checkpoint_frames": True},
    "ckpt-blocks": {"checkpoint_blocks": True},
    "ckpt-frames+offload": {"checkpoint_frames": True, "offload": True},
    "offload": {"offload": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--micro-batch", type=int, default=1)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--compile", action="store_true", help="add a torch.compile row")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per run")
    parser.add_argument("--rounds", type=int, default=1, help="repeat every row this often, interleaved")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    base = TrainSetup(args.preset, args.frames, args.crop, args.micro_batch)
    options = dict(OPTIONS)
    if args.precision == "bf16":
        options = {"bf16": {}, **{f"bf16+{k}": v for k, v in options.items()}}
    if args.compile:
        options["compile"] = {"compile": True}
    setups = {"fp32 eager": base, **{name: replace(base, precision=args.precision, **changes)
                                     for name, changes in options.items()}}
    runs: dict[str, list[TrainResult]] = {name: [] for name in setups}
    for _ in range(args.rounds):
        for name, setup in [*setups.items(), ("fp32 eager", base)]:  # the baseline opens and closes each round
            runs[name].append(benchmark_training(setup, device, args.steps))

    def median_step(name: str) -> float:
        return statistics.median(r.step_s for r in runs[name])

    base_step = median_step("fp32 eager")
    base_memory = runs["fp32 eager"][0].peak_memory_gb
    print(f"{'option':<22}{'step s (median)':>16}{'min-max':>16}{'speed-up':>10}{'peak GB':>9}{'memory':>8}"
          f"{'TFLOP/step':>12}")
    for name, results in runs.items():
        steps = [r.step_s for r in results]
        r = results[0]
        print(f"{name:<22}{median_step(name):>16.3f}{min(steps):>8.3f}-{max(steps):<7.3f}"
              f"{base_step / median_step(name):>9.2f}x{r.peak_memory_gb:>9.3f}{r.peak_memory_gb / base_memory:>7.2f}x"
              f"{r.tflops_per_step:>12.4f}")
    first = runs["fp32 eager"][0]
    print(f"{args.preset}, T={args.frames}, {args.crop}x{args.crop}, micro-batch {args.micro_batch}, {first.device}, "
          f"{torch.get_num_threads()} threads, {args.rounds} round(s) x {args.steps} timed steps, baseline run "
          f"{len(runs['fp32 eager'])} times; memory: {first.memory_source}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({name: as_json(results) for name, results in runs.items()}, f, indent=1)


if __name__ == "__main__":
    main()
