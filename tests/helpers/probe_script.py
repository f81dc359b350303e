"""Runs the trainer on the in-memory clip source and writes how many micro-batches each stage read to
RUN_DIR/clips_read.json (launched as a real process by tests)."""

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.clips import SyntheticClips  # noqa: E402

from nvc1b.train.schedule import load_schedule  # noqa: E402
from nvc1b.train.trainer import RunOptions, train  # noqa: E402


class CountingClips(SyntheticClips):
    def __init__(self):
        super().__init__()
        self.read: Counter[int] = Counter()

    def batches(self, **kw):
        for batch in super().batches(**kw):
            self.read[kw["stage"]] += 1
            yield batch


parser = argparse.ArgumentParser()
parser.add_argument("schedule")
parser.add_argument("--run-dir", required=True)
args = parser.parse_args()
data = CountingClips()
train(load_schedule(args.schedule), RunOptions(Path(args.run_dir)), data=data)
(Path(args.run_dir) / "clips_read.json").write_text(json.dumps(dict(data.read)))
