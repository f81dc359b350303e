"""Training batches from packed shards for one stage of the schedule, one rank, one epoch.

The engine calls::

    n = batches_per_epoch(manifest, micro_batch, world_size)        # from count_clips(manifest)
    for x in train_batches(manifest, frames=T, crop=256, micro_batch=B, seed=s, stage=k, epoch=e,
                           batches=n, start=i, rank=r, world_size=w, num_workers=4, device="cuda"):
        ...   # x: (B, T, 3, crop, crop) float32 in [0, 1]; the batches i, i+1, …, n-1 of this epoch

How the stream is made, and why it resumes exactly:

- an epoch is a permutation of all N clips of the manifest, seeded from (seed, stage, epoch) and computed from
  clip counts alone; sample j of rank r's batch i is clip ``order[(i·w + r)·B + j]``, so over the
  ``batches × B × w`` positions of an epoch every clip is seen once, by one rank and one worker (true epochs);
- with ``batches = N // (B·w)`` (``batches_per_epoch``) the last ``N mod (B·w)`` clips of the permutation are
  left out of that epoch (a different few each epoch; logged with the count); asking for more positions than N
  continues into a fresh permutation, so clips then repeat;
- every rank yields exactly ``batches`` batches per epoch: uneven counts hang DDP;
- batch i is made by worker i mod num_workers, so DataLoader's round robin over workers yields i in order; each
  clip is read by seeking into its tar;
- frame offset, crop and flips come from (seed, stage, epoch, rank, batch, slot). So starting at batch ``start``
  gives exactly the batches start, start+1, … of the uninterrupted run, without reading the skipped ones, for any
  number of workers;
- a clip that cannot be used (undecodable frame, truncated shard, fewer frames than T, smaller than the crop)
  is replaced by a clip from the end of the epoch's permutation (the left-out clips first) and is logged with shard and key; when more than
  ``max_bad_fraction`` of the clips seen (plus one clip of grace) were bad, a DataError names the worst shard.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..errors import DataError
from .manifest import count_clips, manifest_path, read_manifest, shard_paths
from .shards import ClipError, ShardReader

log = logging.getLogger(__name__)

OPEN_SHARDS = 64  # shard files a worker keeps open: an epoch's order visits every shard
MAX_TRIES = 64  # later clips tried in place of an unusable one before the batch is declared impossible


def batches_per_epoch(manifest: str | Path, micro_batch: int, world_size: int = 1) -> int:
    """Batches per rank per epoch: one pass over the clips at the global batch size (at least one)."""
    return max(1, count_clips(manifest) // (micro_batch * world_size))


def dist_info(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """(rank, world size) given, else from torch.distributed when initialised, else RANK / WORLD_SIZE, else (0, 1)."""
    if rank is not None and world_size is not None:
        return rank, world_size
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


class EpochOrder:
    """The clip order of one epoch over all ranks: a seeded permutation of every clip of the manifest
    (positions past the N clips continue into further permutations)."""

    def __init__(self, counts: Sequence[int], seed: Sequence[int]):
        self.ends = np.cumsum(np.asarray(counts))
        self.total = int(self.ends[-1])
        self.seed = list(seed)
        self._perms: dict[int, np.ndarray] = {}

    def __getitem__(self, position: int) -> tuple[int, int]:
        """(shard, clip number in the shard) at ``position`` of the epoch's order."""
        cycle, offset = divmod(position, self.total)
        if cycle not in self._perms:
            self._perms[cycle] = np.random.default_rng(np.random.SeedSequence(self.seed + [cycle])).permutation(self.total)
        clip = int(self._perms[cycle][offset])
        shard = int(np.searchsorted(self.ends, clip, side="right"))
        return shard, clip - (int(self.ends[shard - 1]) if shard else 0)


@dataclass(frozen=True)
class BatchSpec:
    """Everything a worker needs to make the batches of one rank and epoch (picklable)."""

    shards: tuple[Path, ...]
    """Every shard of the manifest (each rank reads from all of them)."""
    counts: tuple[int, ...]
    frames: int
    crop: int
    micro_batch: int
    seed: int
    stage: int
    epoch: int
    rank: int
    batches: int
    start: int
    world_size: int = 1


class ClipBatches(IterableDataset):
    """Yields (batch index, uint8 (B, T, 3, crop, crop), clips seen, bad-clip events, failure or None)."""

    def __init__(self, spec: BatchSpec):
        self.spec = spec

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        s = self.spec
        order = EpochOrder(s.counts, (s.seed, s.stage, s.epoch))
        with ShardReader(max_open=OPEN_SHARDS) as reader:
            for i in range(s.start + worker, s.batches, workers):
                yield self._batch(order, reader, i)

    def _batch(self, order: EpochOrder, reader: ShardReader, i: int):
        s = self.spec
        batch = torch.empty((s.micro_batch, s.frames, 3, s.crop, s.crop), dtype=torch.uint8)
        if get_worker_info() is not None:
            batch.share_memory_()  # filled in place in shared memory: no copy on the way to the main process
        out = batch.numpy()
        events: list[tuple[str, str, str]] = []
        for j in range(s.micro_batch):
            draws = np.random.default_rng([s.seed, s.stage, s.epoch, s.rank, i, j]).random(5)
            own = (i * s.world_size + s.rank) * s.micro_batch + j
            cycle_end = (own // order.total + 1) * order.total  # replacements: the end of this permutation, backwards
            candidates = [own] + [p for p in range(cycle_end - 1, max(cycle_end - 1 - MAX_TRIES, -1), -1) if p != own]
            for position in candidates:
                shard, number = order[position]
                try:
                    self._fill(out[j], reader, self.spec.shards[shard], number, draws)
                    break
                except ClipError as exc:
                    if position == own:
                        events.append((str(self.spec.shards[shard]), self._key(reader, shard, number), str(exc)))
            else:
                failure = f"batch {i}: no usable clip among {len(candidates)} candidates (last: shard {self.spec.shards[shard]})"
                return i, None, s.micro_batch, events, failure
        return i, batch, s.micro_batch, events, None

    def _key(self, reader: ShardReader, shard: int, number: int) -> str:
        try:
            return reader.entry(self.spec.shards[shard], number).key
        except ClipError:
            return f"#{number}"

    def _fill(self, out: np.ndarray, reader: ShardReader, path: Path, number: int, draws: np.ndarray) -> None:
        """Decode T consecutive frames of a clip into ``out`` (T, 3, crop, crop), cropped and flipped."""
        s = self.spec
        entry = reader.entry(path, number)
        meta = reader.metadata(path, entry)
        n, h, w = meta["frames"], meta["height"], meta["width"]
        if n < s.frames:
            raise ClipError(f"has {n} frames, the stage needs {s.frames}")
        if h < s.crop or w < s.crop:
            raise ClipError(f"is {w}x{h}, smaller than the {s.crop}x{s.crop} crop")
        t0 = int(draws[0] * (n - s.frames + 1))
        y, x = int(draws[1] * (h - s.crop + 1)), int(draws[2] * (w - s.crop + 1))
        for t in range(s.frames):
            frame = reader.frame(path, entry, t0 + t)
            if frame.shape[:2] != (h, w):
                raise ClipError(f"frame {t0 + t} is {frame.shape[1]}x{frame.shape[0]}, metadata says {w}x{h}")
            view = frame[y : y + s.crop, x : x + s.crop]
            if draws[3] < 0.5:
                view = view[:, ::-1]  # the same flips for every frame keep the motion consistent
            if draws[4] < 0.5:
                view = view[::-1]
            out[t] = view.transpose(2, 0, 1)  # HWC → CHW here, in the worker, where it is cheap


class BadClipTally:
    """Counts unusable clips per shard, logs each, and stops the run past the allowed fraction."""

    def __init__(self, max_fraction: float):
        self.max_fraction = max_fraction
        self.seen = 0
        self.bad: Counter[str] = Counter()
        self.example: dict[str, str] = {}

    def add(self, seen: int, events: Sequence[tuple[str, str, str]]) -> None:
        self.seen += seen
        for shard, key, reason in events:
            log.warning("skipped clip: shard %s key %s: %s", shard, key, reason)
            self.bad[shard] += 1
            self.example.setdefault(shard, f"key {key}: {reason}")
        total = sum(self.bad.values())
        if total > self.max_fraction * self.seen + (1 if self.max_fraction > 0 else 0):
            worst, n = self.bad.most_common(1)[0]
            raise DataError(
                f"{total} of {self.seen} clips unusable ({total / self.seen:.1%}, more than max_bad_fraction "
                f"{self.max_fraction:.1%}); worst shard {worst}: {n} bad, first {self.example[worst]}"
            )


def to_float(batch: Tensor, device: torch.device | str | None = None) -> Tensor:
    """uint8 → float32 in [0, 1], on ``device`` (the uint8 batch travels; pinned CPU memory when CUDA is up)."""
    device = torch.device(device or "cpu")
    if device.type != "cpu":
        batch = batch.to(device, non_blocking=True)
    pin = device.type == "cpu" and torch.cuda.is_available()
    out = torch.empty(batch.shape, dtype=torch.float32, device=device, pin_memory=pin)
    return out.copy_(batch).div_(255.0)


def train_batches(
    manifest: str | Path,
    *,
    frames: int,
    micro_batch: int,
    seed: int,
    stage: int,
    epoch: int,
    batches: int,
    start: int = 0,
    crop: int = 256,
    rank: int | None = None,
    world_size: int | None = None,
    num_workers: int = 0,
    max_bad_fraction: float = 0.01,
    device: torch.device | str | None = None,
) -> Iterator[Tensor]:
    """Batches ``start`` … ``batches-1`` of one epoch for this rank: float32 (B, T, 3, crop, crop) in [0, 1]."""
    if frames < 1 or crop < 1 or micro_batch < 1 or not 0 <= start <= batches or not 0 <= max_bad_fraction < 1:
        raise ValueError(f"bad loader arguments: frames={frames} crop={crop} micro_batch={micro_batch} start={start} batches={batches} max_bad_fraction={max_bad_fraction}")
    if min(seed, stage, epoch) < 0:
        raise ValueError(f"seed, stage and epoch must be ≥ 0, got {seed}, {stage}, {epoch}")
    rank, world_size = dist_info(rank, world_size)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside a world of {world_size}")
    path = manifest_path(manifest)
    m = read_manifest(path)
    paths = shard_paths(path, m)
    if frames > m.frames_per_clip:
        raise DataError(f"{path}: clips have {m.frames_per_clip} frames, the stage needs {frames}")
    spec = BatchSpec(tuple(paths), tuple(s.clips for s in m.shards), frames, crop, micro_batch,
                     seed, stage, epoch, rank, batches, start, world_size)
    if rank == 0:
        _log_epoch_cover(path, m.clips, batches * micro_batch * world_size, epoch)
    return _batches(spec, num_workers, max_bad_fraction, device)


def _log_epoch_cover(path: Path, clips: int, positions: int, epoch: int) -> None:
    if positions <= clips:
        log.info("epoch %d: %d of the %d clips of %s, each once; %d left out for equal batches per rank",
                 epoch, positions, clips, path, clips - positions)
    else:
        log.info("epoch %d: %d clip positions over the %d clips of %s: clips repeat within the epoch",
                 epoch, positions, clips, path)


def _batches(spec: BatchSpec, num_workers: int, max_bad_fraction: float, device) -> Iterator[Tensor]:
    dataset = ClipBatches(spec)
    if num_workers == 0:
        items = iter(dataset)
    else:
        pin = device is not None and torch.device(device).type == "cuda"
        items = iter(DataLoader(dataset, batch_size=None, num_workers=num_workers, pin_memory=pin))
    tally = BadClipTally(max_bad_fraction)
    for expected in range(spec.start, spec.batches):
        i, batch, seen, events, failure = next(items)
        if i != expected:
            raise RuntimeError(f"loader order broken: got batch {i}, expected {expected}")
        tally.add(seen, events)
        if failure:
            raise DataError(failure)
        yield to_float(batch, device)


__all__ = ["batches_per_epoch", "count_clips", "dist_info", "to_float", "train_batches"]
