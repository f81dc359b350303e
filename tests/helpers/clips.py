"""An in-memory clip source for engine tests: moving crops of smooth random images, a pure function of
(seed, stage, epoch, rank, batch index), like the real loader's stream."""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F


class SyntheticClips:
    def __init__(self, clips: int = 16, size: int = 48):
        self.clips, self.size = clips, size

    def num_clips(self) -> int:
        return self.clips

    def batches(self, *, frames, crop, micro_batch, seed, stage, epoch, rank, world_size, batches, start):
        for b in range(start, batches):
            key = repr((seed, stage, epoch, rank, world_size, b)).encode()
            g = torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1)
            base = torch.rand(micro_batch, 3, crop // 4 + 8, crop // 4 + 8, generator=g)
            base = F.interpolate(base, scale_factor=4, mode="bilinear", align_corners=False)
            clip = [base[..., t : t + crop, 2 * t : 2 * t + crop] for t in range(frames)]
            yield torch.stack(clip, dim=1).contiguous()
