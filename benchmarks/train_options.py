"""Every training-speed option of `nvc1b bench train`, one at a time, against plain fp32 eager, in one process.

The baseline runs first and again last, so drift over the run (thermal, other load) shows as the gap between
its two rows; each option's speed-up and memory ratio are taken against the mean of the two. Options that do
nothing on the device at hand are still run, so the table says so rather than leaving them out.

    python benchmarks/train_options.py --preset tiny --frames 4 --crop 128 [--compile] [--json out.json]

On a GPU add ``--precision bf16`` to put bf16 autocast under every option (the baseline stays fp32 eager).
``--compile`` adds a torch.compile row; on a 2-core CPU it compiles for ~5 minutes.
"""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    base = TrainSetup(args.preset, args.frames, args.crop, args.micro_batch)
    options = dict(OPTIONS)
    if args.precision == "bf16":
        options = {"bf16": {}, **{f"bf16+{k}": v for k, v in options.items()}}
    if args.compile:
        options["compile"] = {"compile": True}
    rows: list[tuple[str, TrainResult]] = [("fp32 eager (first)", benchmark_training(base, device, args.steps))]
    for name, changes in options.items():
        setup = replace(base, precision=args.precision, **changes)
        rows.append((name, benchmark_training(setup, device, args.steps)))
    rows.append(("fp32 eager (last)", benchmark_training(base, device, args.steps)))

    first, last = rows[0][1], rows[-1][1]
    step_s = (first.step_s + last.step_s) / 2
    memory = (first.peak_memory_gb + last.peak_memory_gb) / 2
    print(f"{'option':<24}{'step s':>9}{'speed-up':>10}{'peak GB':>9}{'memory':>8}{'TFLOP/step':>12}")
    for name, r in rows:
        print(f"{name:<24}{r.step_s:>9.3f}{step_s / r.step_s:>9.2f}x{r.peak_memory_gb:>9.3f}"
              f"{r.peak_memory_gb / memory:>7.2f}x{r.tflops_per_step:>12.4f}")
    print(f"{args.preset}, T={args.frames}, {args.crop}x{args.crop}, micro-batch {args.micro_batch}, {first.device}, "
          f"{torch.get_num_threads()} threads; baseline drift {last.step_s / first.step_s - 1:+.1%}; "
          f"memory: {first.memory_source}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{"option": name, **row} for (name, _), row in zip(rows, as_json([r for _, r in rows]))], f,
                      indent=1)


if __name__ == "__main__":
    main()
