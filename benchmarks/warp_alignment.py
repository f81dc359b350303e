"""Offset-diversity alignment: one grid_sample over a K·H-high grid (nvc1b's implementation) against warping K
copies of the feature (the straightforward way, kept here as the reference), side by side in one process.

Prints forward time, forward+backward time and the bytes autograd keeps for backward, for the full-resolution
alignment of the presets' temporal context mining (C⁰ channels, 16 groups, 2 offsets each).

    python benchmarks/warp_alignment.py [--sizes 256x256 1920x1080] [--batch 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from nvc1b.model.layers import up2
from nvc1b.model.temporal_context_mining import OffsetDiversityAlign
from nvc1b.model.warp import flow_warp


def copying_align(align: OffsetDiversityAlign, feature, warped_feature, warped_frame, flow):
    """The reference: expand the feature K times, warp each copy, fuse."""
    b, c, h, w = feature.shape
    g, k = align.groups, align.offsets
    out = up2(align.offset_net(torch.cat([warped_feature, warped_frame, flow], dim=1)))
    offsets = align.MAX_RESIDUE * torch.tanh(out[:, : 2 * g * k]).view(b, g * k, 2, h, w) + flow[:, None]
    mask = torch.sigmoid(out[:, 2 * g * k:]).reshape(b * g * k, 1, h, w)
    x = feature.view(b, g, 1, c // g, h, w).expand(b, g, k, c // g, h, w).reshape(b * g * k, c // g, h, w)
    return align.fuse((flow_warp(x, offsets.reshape(b * g * k, 2, h, w)) * mask).view(b, k * c, h, w))


def saved_bytes(fn) -> int:
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total


def timed(fn, repeats: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["256x256", "1920x1080"])
    ap.add_argument("--channels", type=int, nargs="+", default=[48, 64], help="C⁰ (sdd-21m: 48, nvc1b: 64)")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"{'C0':>4} {'size':>10} | {'fwd copy s':>10} {'fwd one s':>10} {'ratio':>6} | {'f+b copy s':>10} "
          f"{'f+b one s':>10} {'ratio':>6} | {'saved copy MB':>13} {'saved one MB':>12} {'ratio':>6}")
    for c in args.channels:
        torch.manual_seed(0)
        align = OffsetDiversityAlign(c, c, 16, 2)
        for size in args.sizes:
            w, h = (int(v) for v in size.split("x"))
            b = args.batch if w * h <= 512 * 512 else 1
            feature = torch.randn(b, c, h, w, requires_grad=True)
            inputs = (feature, torch.randn(b, c, h, w), torch.rand(b, 3, h, w), 2 * torch.randn(b, 2, h, w))
            ways = {"copy": lambda: copying_align(align, *inputs), "one": lambda: align(*inputs)}
            with torch.no_grad():
                fwd = {n: timed(f, args.repeats) for n, f in ways.items()}
            fb = {n: timed(lambda f=f: f().square().mean().backward(), args.repeats) for n, f in ways.items()}
            saved = {n: saved_bytes(f) / 2**20 for n, f in ways.items()}
            print(f"{c:>4} {size:>10} | {fwd['copy']:>10.3f} {fwd['one']:>10.3f} {fwd['copy'] / fwd['one']:>5.2f}x | "
                  f"{fb['copy']:>10.3f} {fb['one']:>10.3f} {fb['copy'] / fb['one']:>5.2f}x | "
                  f"{saved['copy']:>13.1f} {saved['one']:>12.1f} {saved['copy'] / saved['one']:>5.2f}x")


if __name__ == "__main__":
    main()
