"""Where a P-frame's time goes: wall time of each module of the P-frame model (to a given depth) in one
evaluation-mode forward pass, after coding an I-frame.

    python benchmarks/pframe_profile.py --preset tiny --size 960x544 [--depth 2]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch

from nvc1b.config.model import load_preset
from nvc1b.model.codec import VideoCodec
from nvc1b.model.quantization import RateEstimator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--size", default="960x544", help="WxH")
    ap.add_argument("--depth", type=int, default=2, help="module depth to report (1: the six parts)")
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))

    torch.manual_seed(0)
    codec = VideoCodec(load_preset(args.preset)).eval()
    seconds: dict[str, float] = defaultdict(float)
    started: dict[str, float] = {}
    for name, module in codec.named_modules():
        if name and name.count(".") < args.depth and not name.startswith("intra"):
            module.register_forward_pre_hook(lambda m, i, n=name: started.__setitem__(n, time.perf_counter()))
            module.register_forward_hook(
                lambda m, i, o, n=name: seconds.__setitem__(n, seconds[n] + time.perf_counter() - started[n]))
    q, coder = torch.tensor([2.0]), RateEstimator("round")
    with torch.no_grad():
        state = codec.intra_step(torch.rand(1, 3, h, w), q, coder=coder).state
        seconds.clear()
        start = time.perf_counter()
        codec.inter_step(torch.rand(1, 3, h, w), state, q, coder=coder)
        total = time.perf_counter() - start
    print(f"{args.preset} P-frame forward at {w}x{h}: {total:.2f} s ({torch.get_num_threads()} threads)")
    for name, s in sorted(seconds.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"  {name:<50}{s:8.2f} s {s / total:7.1%}")


if __name__ == "__main__":
    main()
