"""Runs a sweep locally (``run_sweep_local``) on the in-memory clip source, evaluating every model with real
bitstreams of a small clip; launched as a child process by tests, so the trainer's process group stays there.

The evaluation writes ``<out>/rd.json`` (q index, bpp, PSNR per rate point) after checking that decoding
reproduces the encoder's reconstruction exactly. ``--fail-eval MODEL`` makes that model's evaluation fail."""

import argparse
import json
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.clips import SyntheticClips  # noqa: E402

from nvc1b.coding import decode_sequence, encode_sequence, load_coding_model  # noqa: E402
from nvc1b.errors import NvcError  # noqa: E402
from nvc1b.sweep.build import resolve_models  # noqa: E402
from nvc1b.sweep.local import run_sweep_local  # noqa: E402
from nvc1b.sweep.spec import load_sweep  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("spec")
parser.add_argument("--run-root", required=True)
parser.add_argument("--fail-eval", default="")
args = parser.parse_args()


def smooth_clip(frames=3, height=32, width=48):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(frames, 3, height, width, generator=g)
    return torch.nn.functional.avg_pool2d(x, 7, 1, 3)


def evaluate(checkpoint: Path, dataset: Path, out: Path) -> None:
    if args.fail_eval and f"/{args.fail_eval}/" in str(checkpoint):
        raise NvcError(f"evaluation of {checkpoint} refused by the test")
    codec = load_coding_model(checkpoint)
    clip = smooth_clip()
    points = []
    for q in (0, 1, 2, 3):
        encoded = encode_sequence(codec, clip, q_index=q, intra_period=32)
        decoded = decode_sequence(codec, encoded.stream)
        exact = bool(torch.equal(decoded.frames, encoded.reconstruction))
        mse = float(((decoded.frames - clip) ** 2).mean())
        points.append({"q_index": q, "bpp": encoded.bpp, "psnr": -10 * math.log10(max(mse, 1e-10)), "exact": exact})
    out.mkdir(parents=True, exist_ok=True)
    (out / "rd.json").write_text(json.dumps(points))


sweep = load_sweep(args.spec)
outcomes = run_sweep_local(sweep, resolve_models(sweep), Path(args.run_root), evaluate=evaluate,
                           data=SyntheticClips(clips=8, size=32))
print(json.dumps([o.model for o in outcomes]))
