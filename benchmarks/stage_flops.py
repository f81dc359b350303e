"""FLOPs of one training clip of a schedule's stage, counted on the meta device: the forward, and the backward
(which includes what activation checkpointing recomputes), next to the forward FLOPs of the six parts alone.

    python benchmarks/stage_flops.py stages/nvc1b_rgb.yaml t04-inter-meRD [--crop 256] [--checkpoint-frames on|off]

A stage's frozen half adds nothing to the backward when it is neither differentiated nor recomputed: the
backward of an Inter stage is then the motion half's alone. Nothing is computed for real (meta tensors), so the
1.36B-parameter preset counts in seconds on a CPU.
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from nvc1b.config.model import load_preset
from nvc1b.model.codec import VideoCodec
from nvc1b.train.clip import ClipLoss, ClipSpec, set_trainable
from nvc1b.train.schedule import load_schedule


def count(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("schedule")
    parser.add_argument("stage")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--checkpoint-frames", choices=("on", "off"), default="on")
    args = parser.parse_args()
    schedule = load_schedule(args.schedule)
    stage = schedule.stages[schedule.index(args.stage)]
    with torch.device("meta"):
        codec = VideoCodec(load_preset(schedule.preset))
    set_trainable(codec, stage.parts)
    spec = ClipSpec(parts=stage.parts, loss=stage.loss, frames=stage.frames, lambdas=tuple(schedule.lambdas),
                    frame_weights=tuple(schedule.frame_weights), checkpoint_frames=args.checkpoint_frames == "on")
    module = ClipLoss(codec, spec)
    clip = torch.empty(1, stage.frames, 3, args.crop, args.crop, device="meta")
    q_index = torch.zeros(1, device="meta")
    out = {}
    forward = count(lambda: out.setdefault("loss", module(clip, q_index)[0]))
    backward = count(lambda: out["loss"].backward())
    print(f"{schedule.preset} stage {stage.name}: {stage.parts}, {stage.loss}, T={stage.frames}, {args.crop}x{args.crop},"
          f" micro-batch 1, per-frame checkpointing {args.checkpoint_frames}")
    print(f"forward {forward / 1e12:.3f} TFLOP, backward (with recomputation) {backward / 1e12:.3f} TFLOP, "
          f"total {(forward + backward) / 1e12:.3f} TFLOP per clip")
    if hasattr(codec, "motion_step"):
        with torch.no_grad():  # the two halves alone, forward, on P-frame 1 against the I-frame
            state = codec.intra_step(clip[:, 0], q_index).state
            motion = {}
            half_m = count(lambda: motion.setdefault("m", codec.motion_step(clip[:, 1], state, q_index)))
            half_c = count(lambda: codec.context_step(clip[:, 1], state, motion["m"], q_index))
        print(f"forward of one P-frame: motion half {half_m / 1e12:.3f} TFLOP, contextual half {half_c / 1e12:.3f} TFLOP")

if __name__ == "__main__":
    main()
