"""Runs the trainer on the in-memory clip source; launched as a real process (python or torchrun) by tests.

``--rank-report DIR``: when a stage ends, every rank writes DIR/rank<N>.json with a checksum of its model weights
and DeepSpeed's count of skipped steps, so tests can check that all ranks hold the same weights."""

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.clips import MixedMotionClips, SyntheticClips  # noqa: E402

from nvc1b.errors import NvcError  # noqa: E402
from nvc1b.train import stage as stage_module  # noqa: E402
from nvc1b.train.schedule import load_schedule  # noqa: E402
from nvc1b.train.trainer import EXIT_STOPPED, RunOptions, train  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("schedule")
parser.add_argument("--run-dir", required=True)
parser.add_argument("--resume", action="store_true")
parser.add_argument("--max-steps", type=int)
parser.add_argument("--stage")
parser.add_argument("--from-checkpoint")
parser.add_argument("--clips", choices=("synthetic", "mixed"), default="synthetic")
parser.add_argument("--rank-report", type=Path)
parser.add_argument("--local_rank", type=int)  # the deepspeed launcher's
args = parser.parse_args()


def _reporting(save_checkpoint):
    def save_and_report(engine, run_dir, progress, keep, dist):
        if progress.stage_done:
            digest = hashlib.sha256()
            for name, tensor in sorted(engine.module.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
            args.rank_report.mkdir(parents=True, exist_ok=True)
            report = {"rank": dist.rank, "sha256": digest.hexdigest(), "skipped": int(engine.skipped_steps)}
            (args.rank_report / f"rank{dist.rank}.json").write_text(json.dumps(report))
        return save_checkpoint(engine, run_dir, progress, keep, dist)

    return save_and_report


if args.rank_report:
    stage_module.save_checkpoint = _reporting(stage_module.save_checkpoint)
data = MixedMotionClips(clips=64) if args.clips == "mixed" else SyntheticClips()
try:
    result = train(load_schedule(args.schedule), RunOptions(Path(args.run_dir), args.stage, args.resume, args.max_steps,
                                                             from_checkpoint=args.from_checkpoint),
                   data=data)
except NvcError as exc:
    print(f"nvc1b: error: {exc}", file=sys.stderr)
    sys.exit(exc.exit_code)
sys.exit(EXIT_STOPPED if result.stop_reason == "signal" else 0)
