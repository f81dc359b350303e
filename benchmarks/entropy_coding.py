"""Entropy-coding throughput and per-frame coding time on the CPU.

1. Throughput (one core): the 4 quadtree steps of a 1080p-sized contextual latent ŷ (C_y × 68 × 120, the
   sdd-21m/nvc1b width by default) through the bitstream coder — level lookup, grouping, escapes and ANS —
   in symbols per second, for encoding (including the final ANS pass) and for decoding.
2. Per-frame time of real bitstreams (an I-frame and a P-frame) for the given presets and sizes, split into
   network and entropy-coding time. The weights are random (seeded): timing does not depend on training, the
   rates do; entropy-coding time mostly depends on the number of symbols.

    PYTHONPATH=. python benchmarks/entropy_coding.py                       # everything (minutes on 2 cores)
    PYTHONPATH=. python benchmarks/entropy_coding.py --skip-frames         # throughput only
    PYTHONPATH=. python benchmarks/entropy_coding.py --presets tiny --sizes 256x256 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from nvc1b.coding import load_coding_model
from nvc1b.coding.entropy import SymbolDecoder, SymbolEncoder
from nvc1b.config.model import load_preset
from nvc1b.data.video import parse_size
from nvc1b.model import VideoCodec
from nvc1b.model.export import save_model
from nvc1b.model.quadtree import quadtree_masks
from nvc1b.perf.codec_bench import benchmark_codec


def synthetic_latent(channels: int, height: int, width: int, log_scale: tuple[float, float], seed: int = 0):
    """(y, means, scales), each (1, C, h, w): Laplace residuals around random means, log-uniform scales."""
    g = torch.Generator().manual_seed(seed)
    shape = (1, channels, height, width)
    means = torch.randn(shape, generator=g) * 2
    scales = torch.exp(torch.empty(shape).uniform_(*log_scale, generator=g))
    u = torch.rand(shape, generator=g) - 0.5
    noise = -torch.sign(u) * torch.log1p(-2 * u.abs())  # Laplace(0, 1)
    return means + noise * scales, means, scales


def throughput(codec, channels: int, regime: str, log_scale: tuple[float, float], repeats: int) -> dict:
    y, means, scales = synthetic_latent(channels, 68, 120, log_scale)
    masks = quadtree_masks(channels, 68, 120)
    symbols = y.numel()
    encode_times, decode_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        encoder = SymbolEncoder(codec.tables)
        for mask in masks:
            encoder.laplace("y", y, means, scales, mask)
        payload = encoder.finish()
        encode_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        decoder = SymbolDecoder(codec.tables, payload)
        for mask in masks:
            decoder.laplace("y", None, means, scales, mask)
        decoder.finish()
        decode_times.append(time.perf_counter() - start)
    return {
        "regime": regime, "latent": f"1x{channels}x68x120", "symbols": symbols,
        "bits_per_symbol": 8 * len(payload) / symbols,
        "encode_msym_s": symbols / statistics.median(encode_times) / 1e6,
        "decode_msym_s": symbols / statistics.median(decode_times) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=128, help="latent channels C_y of the throughput test")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--presets", nargs="+", default=["tiny", "sdd-21m"])
    parser.add_argument("--sizes", nargs="+", default=["256x256", "1920x1080"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads for the networks")
    parser.add_argument("--skip-frames", action="store_true", help="only the entropy-coding throughput")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    results: dict = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
                     "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        torch.set_num_threads(1)  # entropy coding is single-threaded; keep torch's level lookup on one core too
        codec = load_coding_model(save_model(VideoCodec(load_preset("tiny")), Path(tmp) / "t.safetensors"))
        results["throughput"] = [
            throughput(codec, args.channels, "low rate: scales 0.11..1", (np.log(0.11), 0.0), args.repeats),
            throughput(codec, args.channels, "spread: scales 0.11..30", (np.log(0.11), np.log(30.0)), args.repeats),
        ]
        print("entropy coding, one core, 1080p-sized latent")
        print(f"{'regime':<28}{'latent':>14}{'bits/sym':>10}{'encode Msym/s':>15}{'decode Msym/s':>15}")
        for r in results["throughput"]:
            print(f"{r['regime']:<28}{r['latent']:>14}{r['bits_per_symbol']:>10.3f}"
                  f"{r['encode_msym_s']:>15.2f}{r['decode_msym_s']:>15.2f}")
        if not args.skip_frames:
            torch.set_num_threads(args.threads)
            results["frames"] = []
            print(f"\nper-frame time on the CPU ({args.threads} threads for the networks), seconds")
            print(f"{'preset':<9}{'size':>11}{'frame':>6}{'encode':>9}{'network':>9}{'entropy':>9}"
                  f"{'decode':>9}{'network':>9}{'entropy':>9}")
            for preset in args.presets:
                for size in args.sizes:
                    for r in benchmark_codec(preset, *parse_size(size), args.threads):
                        results["frames"].append(r)
                        print(f"{r['preset']:<9}{r['size']:>11}{r['frame']:>6}{r['encode_s']:>9.3f}"
                              f"{r['encode_network_s']:>9.3f}{r['encode_entropy_s']:>9.3f}{r['decode_s']:>9.3f}"
                              f"{r['decode_network_s']:>9.3f}{r['decode_entropy_s']:>9.3f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
