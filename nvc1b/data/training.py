"""The training engine's view of the data: a schedule's `data:` section → clip counts and per-rank batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from ..train.schedule import DataSource
from .builtin import ensure_builtin_dataset
from .loader import count_clips, train_batches
from .manifest import manifest_path


class ShardClips:
    """Clips of a shard manifest, split over ranks and workers by ``train_batches``."""

    def __init__(self, manifest: Path, workers: int, device: torch.device | None = None):
        self.manifest, self.workers, self.device = manifest, workers, device

    def num_clips(self) -> int:
        return count_clips(self.manifest)

    def batches(
        self, *, frames: int, crop: int, micro_batch: int, seed: int, stage: int, epoch: int, rank: int,
        world_size: int, batches: int, start: int,
    ) -> Iterator[Tensor]:
        return train_batches(
            self.manifest, frames=frames, crop=crop, micro_batch=micro_batch, seed=seed, stage=stage, epoch=epoch,
            batches=batches, start=start, rank=rank, world_size=world_size, num_workers=self.workers,
            device=self.device,
        )


def open_training_data(source: DataSource, device: torch.device | None = None) -> ShardClips:
    """The manifest a schedule names, or the built-in synthetic set ('builtin', built on first use and cached)."""
    if source.train == "builtin":
        manifest = ensure_builtin_dataset().train_manifest
    else:
        manifest = manifest_path(source.train)
    return ShardClips(Path(manifest), source.workers, device if device is not None and device.type == "cuda" else None)
