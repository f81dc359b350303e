"""How fast the demo's model learns, measured outside the training engine (plain AdamW, one process): the tool
behind the numbers in README's "Where the demo recipe stands".

1. ``intra``: train the intra coder of a preset from scratch on the built-in clips and, every ``--every`` steps,
   code the first frame of each synthetic test sequence (its centred ``--window``, rounding, estimated bits) at
   every rate point. Per rate point it prints the RGB PSNR, bpp, the luma PSNR, the PSNR the same reconstruction
   would have with each frame's three channel means set to the source's ("channel means fixed": what sending
   three numbers per frame would buy), and the decoded frames' colour energy as a share of the sources' (0: grey).
2. ``pframes``: from an export (e.g. a demo run's ``exports/00-intra.safetensors``), train P-frame stages given as
   JSON rows ``[parts, loss, frames, lr, steps]`` and print, after each, the PSNR of every frame of the first
   ``--frames`` frames of the test sequences (frame 0 is the I-frame), at the highest rate point.
3. ``linear``: the yardstick, a linear autoencoder (a 16×16 stride-16 convolution to the intra latent's width and
   its transpose, no quantisation) trained on the same stream, with two baselines of the smooth test windows:
   16×16 block means scaled up bilinearly, and frame 1 coded as a copy of frame 0.

    PYTHONPATH=. python benchmarks/demo_learning.py intra --steps 480 --every 120 --init zero-residual
    PYTHONPATH=. python benchmarks/demo_learning.py linear --steps 300
    PYTHONPATH=. python benchmarks/demo_learning.py pframes --init runs/demo/exports/00-intra.safetensors \\
        --stages '[["Recon", "recD", 4, 5e-4, 150]]'

The first two follow ``stages/demo.yaml``'s conventions: λ per sample from the rate points, permuted colours, the
gradient clipped to the schedule's 0.2, linear warm-up then half-cosine decay. Figures depend on the seed (the
P-frame stages in particular vary from seed to seed); compare settings side by side in one run of the machine.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from types import SimpleNamespace

import torch
from torch import Tensor

from nvc1b.config.model import load_preset
from nvc1b.data.builtin import ensure_builtin_dataset
from nvc1b.data.loader import train_batches
from nvc1b.data.testsets import load_test_set, read_rgb_frames
from nvc1b.data.video import rgb_to_yuv444
from nvc1b.model.codec import VideoCodec
from nvc1b.model.export import load_model
from nvc1b.model.hierarchy import FRAME_WEIGHTS
from nvc1b.model.init import INITS, initialise
from nvc1b.model.quantization import RateEstimator
from nvc1b.train.augment import permute_colours
from nvc1b.train.clip import ClipLoss, ClipSpec, set_trainable
from nvc1b.train.optimizer import lr_multiplier, set_lr
from nvc1b.train.schedule import Stage
from nvc1b.train.updates import steps_per_clip

DEMO_LAMBDAS = "200,600,1800,5400"
GRAD_CLIP = 0.2


def demo_windows(frames: int, window: int) -> Tensor:
    """(S, T, 3, window, window): the first ``frames`` frames of each synthetic test sequence, centred window."""
    test_set = load_test_set(ensure_builtin_dataset().test_set)
    clips = []
    for seq in test_set.sequences:
        clip = torch.stack(list(read_rgb_frames(test_set, seq, frames)))
        top, left = (clip.shape[-2] - window) // 2, (clip.shape[-1] - window) // 2
        clips.append(clip[..., top : top + window, left : left + window])
    return torch.stack(clips)


def train_stream(frames: int, crop: int, batch: int, seed: int, stage: int) -> Iterator[Tensor]:
    manifest = ensure_builtin_dataset().train_manifest
    epoch = 0
    while True:
        yield from train_batches(manifest, frames=frames, crop=crop, micro_batch=batch, seed=seed, stage=stage,
                                 epoch=epoch, batches=10**9, start=0, rank=0, world_size=1, num_workers=0)
        epoch += 1


def psnr(a: Tensor, b: Tensor) -> float:
    return (-10 * torch.log10((a - b).pow(2).flatten(1).mean(1).clamp_min(1e-10))).mean().item()


def luma(x: Tensor) -> Tensor:
    return rgb_to_yuv444(x)[:, 0]


def colour_energy(x: Tensor) -> float:
    return (x - x.mean(1, keepdim=True)).pow(2).mean().item()


def intra_rows(codec: VideoCodec, frames: Tensor, points: int) -> list[str]:
    codec.eval()
    rows = []
    with torch.no_grad():
        for q in range(points):
            out = codec.intra_step(frames, torch.full((len(frames),), float(q)), coder=RateEstimator("round"))
            fixed = (out.x_hat - out.x_hat.mean((2, 3), keepdim=True) + frames.mean((2, 3), keepdim=True)).clamp(0, 1)
            rows.append(f"q{q} {psnr(out.x_hat, frames):5.2f} dB {out.bpp().mean().item():.3f} bpp | luma "
                        f"{psnr(luma(out.x_hat), luma(frames)):5.2f} dB | channel means fixed {psnr(fixed, frames):5.2f} dB"
                        f" | colour energy {colour_energy(out.x_hat) / colour_energy(frames):.2f}")
    codec.train()
    return rows


def run_intra(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    lambdas = torch.tensor([float(v) for v in args.lambdas.split(",")])
    codec = VideoCodec(load_preset(args.preset))
    initialise(codec, args.init)
    optimizer = torch.optim.AdamW(codec.intra.parameters(), lr=args.lr, weight_decay=0.0)
    test = demo_windows(1, args.window)[:, 0]
    stage = Stage(name="intra", frames=1, parts="Intra", loss="intra", lr=args.lr, steps=args.steps,
                  warmup_steps=args.warmup, decay="cosine", decay_to=args.decay_to)
    stream = train_stream(1, args.crop, args.batch, args.seed, 0)
    start, skipped = time.perf_counter(), 0
    for step in range(1, args.steps + 1):
        x = next(stream)
        x = (permute_colours(x) if args.permute_colours else x)[:, 0]
        q = torch.randint(0, len(lambdas), (x.shape[0],))
        set_lr(optimizer, args.lr * lr_multiplier(stage, step - 1, args.steps))
        out = codec.intra_step(x, q.float())
        loss = (lambdas[q] * (out.x_hat - x).pow(2).flatten(1).mean(1) + out.bpp()).mean()
        optimizer.zero_grad()
        if not torch.isfinite(loss):
            skipped += 1
            continue
        loss.backward()
        if not torch.isfinite(torch.nn.utils.clip_grad_norm_(codec.intra.parameters(), GRAD_CLIP)):
            skipped += 1
            continue
        optimizer.step()
        if step % args.every == 0 or step == args.steps:
            seconds = time.perf_counter() - start
            print(f"step {step} ({seconds / step:.3f} s/step, {skipped} non-finite steps skipped)", flush=True)
            for row in intra_rows(codec, test, len(lambdas)):
                print("   ", row, flush=True)
            start += time.perf_counter() - start - seconds  # evaluation time is not training time


def run_linear(args: argparse.Namespace) -> None:
    """The yardstick: a linear autoencoder (one 16×16 stride-16 convolution to the intra latent's width and its
    transpose, no quantisation, no rate) on the same stream and colour permutation, at a constant lr with no
    gradient clip, with the smooth test windows' easy baselines."""
    torch.manual_seed(args.seed)
    width = load_preset(args.preset).intra.latent_channels
    model = torch.nn.Sequential(torch.nn.Conv2d(3, width, 16, 16), torch.nn.ConvTranspose2d(width, 3, 16, 16))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    clips = demo_windows(2, args.window)
    test = clips[:, 0]
    blocks = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(test, 16), scale_factor=16, mode="bilinear")
    print(f"16x16 block means, bilinear: {psnr(blocks, test):.2f} dB | frame 1 as a copy of frame 0: "
          f"{psnr(clips[:, 0], clips[:, 1]):.2f} dB", flush=True)
    stream = train_stream(1, args.crop, 1, args.seed, 0)
    for step in range(1, args.steps + 1):
        x = next(stream)
        x = (permute_colours(x) if args.permute_colours else x)[:, 0]
        loss = (model(x - 0.5) + 0.5 - x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % args.every == 0 or step == args.steps:
            with torch.no_grad():
                out = (model(test - 0.5) + 0.5).clamp(0, 1)
            print(f"step {step}: {psnr(out, test):.2f} dB | colour energy {colour_energy(out) / colour_energy(test):.2f}",
                  flush=True)


def sequence_psnrs(codec: VideoCodec, clips: Tensor, q: int) -> tuple[list[float], float]:
    """Per-frame RGB PSNR (mean over sequences) and mean bpp of the clips coded at rate point q."""
    codec.eval()
    with torch.no_grad():
        qi = torch.full((len(clips),), float(q))
        out = codec.intra_step(clips[:, 0], qi, coder=RateEstimator("round"))
        psnrs, bpps = [psnr(out.x_hat, clips[:, 0])], [out.bpp().mean().item()]
        for t in range(1, clips.shape[1]):
            out = codec.inter_step(clips[:, t], out.state, qi, coder=RateEstimator("round"))
            psnrs.append(psnr(out.x_hat, clips[:, t]))
            bpps.append(out.bpp().mean().item())
    codec.train()
    return psnrs, sum(bpps) / len(bpps)


def run_pframes(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    lambdas = tuple(float(v) for v in args.lambdas.split(","))
    codec = load_model(args.init)
    clips = demo_windows(args.frames, args.window)
    top = len(lambdas) - 1

    def report(tag: str) -> None:
        psnrs, bpp = sequence_psnrs(codec, clips, top)
        print(f"{tag}: q{top} mean {sum(psnrs) / len(psnrs):.2f} dB, {bpp:.3f} bpp | per frame "
              + " ".join(f"{p:.1f}" for p in psnrs), flush=True)

    report("start")
    for index, (parts, loss_name, frames, lr, steps) in enumerate(json.loads(args.stages)):
        stage = Stage(name=f"stage{index}", frames=frames, parts=parts, loss=loss_name, lr=lr, steps=steps,
                      warmup_steps=args.warmup, decay="cosine", decay_to=0.0)
        trainable = set_trainable(codec, parts)
        model = ClipLoss(codec, ClipSpec(parts=parts, loss=loss_name, frames=frames, lambdas=lambdas,
                                         frame_weights=FRAME_WEIGHTS))
        optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
        per_clip = steps_per_clip(stage, SimpleNamespace(updates="per_frame"))  # the engine's default updates
        stream = train_stream(frames, args.crop, 1, args.seed, index + 1)
        start, state, clip, q = time.perf_counter(), None, None, None
        for step in range(1, steps + 1):
            if (step - 1) % per_clip == 0:
                clip, q, state = permute_colours(next(stream)), torch.randint(0, len(lambdas), (1,)).float(), None
            set_lr(optimizer, lr * lr_multiplier(stage, step - 1, steps))
            if per_clip > 1:
                loss, _, state = model(clip, q, frame=(step - 1) % per_clip + 1, state=state)
            else:
                loss, _ = model(clip, q)
            optimizer.zero_grad()
            if torch.isfinite(loss):
                loss.backward()
                if torch.isfinite(torch.nn.utils.clip_grad_norm_(trainable, GRAD_CLIP)):
                    optimizer.step()
        report(f"stage {index} {parts}/{loss_name}, {frames} frames, lr {lr:g}, {steps} steps "
               f"({(time.perf_counter() - start) / steps:.2f} s/step)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("intra", "pframes", "linear"):
        p = sub.add_parser(name)
        p.add_argument("--lambdas", default=DEMO_LAMBDAS, help="rate points' λ (the demo's by default)")
        p.add_argument("--crop", type=int, default=128, help="training crop")
        p.add_argument("--window", type=int, default=128, help="centred test window (the demo's)")
        p.add_argument("--warmup", type=int, default=30 if name == "intra" else 5, help="warm-up steps")
        p.add_argument("--seed", type=int, default=0)
    intra = sub.choices["intra"]
    intra.add_argument("--preset", default="tiny")
    intra.add_argument("--steps", type=int, default=480)
    intra.add_argument("--every", type=int, default=120, help="evaluate every N steps")
    intra.add_argument("--lr", type=float, default=2e-3)
    intra.add_argument("--decay-to", type=float, default=0.05, help="final lr as a fraction of --lr")
    intra.add_argument("--batch", type=int, default=1)
    intra.add_argument("--init", choices=INITS, default="default", help="initialisation of the fresh codec")
    intra.add_argument("--no-permute-colours", dest="permute_colours", action="store_false")
    linear = sub.choices["linear"]
    linear.add_argument("--preset", default="tiny", help="the latent width is the preset's intra latent's")
    linear.add_argument("--steps", type=int, default=300)
    linear.add_argument("--every", type=int, default=100)
    linear.add_argument("--lr", type=float, default=1e-3)
    linear.add_argument("--no-permute-colours", dest="permute_colours", action="store_false")
    pframes = sub.choices["pframes"]
    pframes.add_argument("--init", required=True, help="an nvc1b export with a trained intra coder")
    pframes.add_argument("--stages", required=True, help='JSON rows [parts, loss, frames, lr, steps]')
    pframes.add_argument("--frames", type=int, default=8, help="test frames per sequence (the demo's 8)")
    args = parser.parse_args()
    {"intra": run_intra, "pframes": run_pframes, "linear": run_linear}[args.what](args)


if __name__ == "__main__":
    main()
