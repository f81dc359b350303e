"""``nvc1b train``: run a schedule (single process, torchrun, the deepspeed launcher or srun)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a schedule of stages (stages/*.yaml)")
    p.add_argument("schedule", help="schedule YAML (for example stages/demo.yaml)")
    p.add_argument("--run-dir", required=True, type=Path, help="run directory: checkpoints, exports, logs, status")
    p.add_argument("--stage", help="run only this stage (name or index)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the newest intact checkpoint (a damaged newer one is reported and skipped)")
    p.add_argument("--from-checkpoint", metavar="TAG",
                   help="resume from this checkpoint (a folder name in RUN_DIR/checkpoints/) instead of the newest")
    p.add_argument("--max-steps", type=int, help="end the whole run after N (>= 1) optimizer steps in total")
    p.add_argument("--checkpoint-every", type=int, help="optimizer steps (>= 1) between checkpoints")
    p.set_defaults(func=run)

    e = sub.add_parser("export", help="fp32 weights (frozen parts included) of any checkpoint of a run")
    e.add_argument("run_dir", type=Path, help="run directory")
    e.add_argument("--output", required=True, type=Path, help="export to write (.safetensors, for --checkpoint)")
    e.add_argument("--from-checkpoint", metavar="TAG", help="checkpoint (folder in RUN_DIR/checkpoints/); default: "
                   "the newest intact one")
    e.set_defaults(func=run_export)


def run(args: argparse.Namespace) -> int:
    from ..train.schedule import load_schedule
    from ..train.trainer import EXIT_STOPPED, RunOptions, train

    opts = RunOptions(args.run_dir, args.stage, args.resume, args.max_steps, args.checkpoint_every,
                      from_checkpoint=args.from_checkpoint)
    schedule = load_schedule(args.schedule)
    result = train(schedule, opts)
    sys.stderr.flush()
    return EXIT_STOPPED if result.stop_reason == "signal" else 0


def run_export(args: argparse.Namespace) -> int:
    import logging

    from ..train.recover import export_checkpoint

    logging.basicConfig(level=logging.WARNING, format="nvc1b: %(levelname)s: %(message)s")
    path, tag = export_checkpoint(args.run_dir, args.output, args.from_checkpoint)
    print(f"wrote {path} (fp32 weights of checkpoint {tag})")
    return 0
