"""Runs the trainer on the in-memory clip source; launched as a real process (python or torchrun) by tests."""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.clips import SyntheticClips  # noqa: E402

from nvc1b.errors import NvcError  # noqa: E402
from nvc1b.train.schedule import load_schedule  # noqa: E402
from nvc1b.train.trainer import EXIT_STOPPED, RunOptions, train  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("schedule")
parser.add_argument("--run-dir", required=True)
parser.add_argument("--resume", action="store_true")
parser.add_argument("--max-steps", type=int)
parser.add_argument("--stage")
parser.add_argument("--from-checkpoint")
parser.add_argument("--local_rank", type=int)  # the deepspeed launcher's
args = parser.parse_args()
try:
    result = train(load_schedule(args.schedule), RunOptions(Path(args.run_dir), args.stage, args.resume, args.max_steps,
                                                             from_checkpoint=args.from_checkpoint),
                   data=SyntheticClips())
except NvcError as exc:
    print(f"nvc1b: error: {exc}", file=sys.stderr)
    sys.exit(exc.exit_code)
sys.exit(EXIT_STOPPED if result.stop_reason == "signal" else 0)
