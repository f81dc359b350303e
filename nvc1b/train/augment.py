"""Augmentation of training clips inside the trainer (after the data loader, under the step's seed)."""

from __future__ import annotations

import torch
from torch import Tensor


def permute_colours(frames: Tensor) -> Tensor:
    """(B, T, 3, H, W) clips with each clip's R, G, B channels in a random order (one order for all its frames),
    drawn from torch's global generator (the trainer seeds it per step, so a resumed run draws the same)."""
    order = torch.stack([torch.randperm(3) for _ in range(frames.shape[0])]).to(frames.device)  # (B, 3)
    index = order[:, None, :, None, None].expand(-1, frames.shape[1], -1, frames.shape[3], frames.shape[4])
    return torch.gather(frames, 2, index)
