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


class MixedMotionClips(SyntheticClips):
    """Clips whose content differs from sample to sample: static, slow and fast pans (0, 1, 4 or 8 pixels per
    frame), textures from smooth to pixel noise and contrasts from flat to full, so that per-sample losses spread
    over two orders of magnitude, as real clips' do."""

    SPEEDS = (0, 1, 4, 8)
    DETAIL = (8, 4, 2, 1)
    CONTRAST = (0.1, 0.3, 1.0)

    def batches(self, *, frames, crop, micro_batch, seed, stage, epoch, rank, world_size, batches, start):
        for b in range(start, batches):
            clips = []
            for i in range(micro_batch):
                key = repr((seed, stage, epoch, rank, world_size, b, i)).encode()
                g = torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1)
                speed = self.SPEEDS[int(torch.randint(len(self.SPEEDS), (1,), generator=g))]
                detail = self.DETAIL[int(torch.randint(len(self.DETAIL), (1,), generator=g))]
                contrast = self.CONTRAST[int(torch.randint(len(self.CONTRAST), (1,), generator=g))]
                side = crop + speed * (frames - 1)
                base = torch.rand(1, 3, -(-side // detail) + 1, -(-side // detail) + 1, generator=g)
                base = F.interpolate(base, scale_factor=detail, mode="bilinear", align_corners=False)[0]
                base = 0.5 + contrast * (base - 0.5)
                clips.append(torch.stack([base[:, :crop, speed * t : speed * t + crop] for t in range(frames)]))
            yield torch.stack(clips).contiguous()
