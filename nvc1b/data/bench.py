"""Data-loading benchmark: the shard loader against a plain PNG-folder loader doing the same crops on the same
clips, for several worker counts, in one run (``nvc1b bench data``).

Both loaders produce the same thing (float32 (B, T, 3, crop, crop) in [0, 1], random T-frame window, crop, flips);
both read from the page cache (every file is read once before timing), so the comparison is decode work, not disk.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, RandomSampler

from . import video
from .loader import to_float, train_batches
from .manifest import manifest_path, read_manifest, shard_paths
from .pack import pack_vimeo
from .synthetic import synthetic_sources

log = logging.getLogger(__name__)


class PngFolderClips(Dataset):
    """The baseline: one clip folder per item, frames opened with Pillow, then the loader's window, crop and flips."""

    def __init__(self, folders: Sequence[Path], frames: int, crop: int, seed: int = 0):
        self.clips = [video.list_png_frames(f) for f in folders]
        self.frames, self.crop, self.seed = frames, crop, seed

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> torch.Tensor:
        paths = self.clips[index]
        draws = np.random.default_rng([self.seed, index]).random(5)
        t0 = int(draws[0] * (len(paths) - self.frames + 1))
        frames = []
        for p in paths[t0 : t0 + self.frames]:
            with Image.open(p) as img:
                frames.append(np.asarray(img.convert("RGB")))
        h, w = frames[0].shape[:2]
        y, x = int(draws[1] * (h - self.crop + 1)), int(draws[2] * (w - self.crop + 1))
        clip = np.stack(frames)[:, y : y + self.crop, x : x + self.crop]
        if draws[3] < 0.5:
            clip = clip[:, :, ::-1]
        if draws[4] < 0.5:
            clip = clip[:, ::-1]
        return torch.from_numpy(np.ascontiguousarray(clip.transpose(0, 3, 1, 2)))  # (T, 3, crop, crop) uint8


def png_folder_batches(folders: Sequence[Path], frames: int, crop: int, micro_batch: int, num_workers: int,
                       batches: int, seed: int = 0) -> Iterator[torch.Tensor]:
    """``batches`` float32 (B, T, 3, crop, crop) batches from clip folders, the way a plain training script reads them."""
    dataset = PngFolderClips(folders, frames, crop, seed)
    sampler = RandomSampler(dataset, num_samples=batches * micro_batch, generator=torch.Generator().manual_seed(seed))
    for batch in DataLoader(dataset, batch_size=micro_batch, sampler=sampler, num_workers=num_workers):
        yield to_float(batch)


def shard_batches(manifest: Path, frames: int, crop: int, micro_batch: int, num_workers: int, batches: int,
                  seed: int = 0) -> Iterator[torch.Tensor]:
    """``batches`` batches from the shard loader, one rank."""
    return train_batches(manifest, frames=frames, crop=crop, micro_batch=micro_batch, seed=seed, stage=0, epoch=0,
                         batches=batches, rank=0, world_size=1, num_workers=num_workers)


@dataclass(frozen=True)
class Rate:
    loader: str
    workers: int
    clips_per_s: float
    mb_per_s: float  # input bytes read (compressed frames) per second


def time_batches(batches: Iterable[torch.Tensor], count: int, warmup: int = 1) -> tuple[int, float]:
    """(clips, seconds) over ``count`` batches after ``warmup`` batches (worker start-up is not timed)."""
    it = iter(batches)
    try:
        for _ in range(warmup):
            next(it)
        clips, start = 0, time.perf_counter()
        for _ in range(count):
            clips += next(it).shape[0]
        return clips, time.perf_counter() - start
    finally:
        if hasattr(it, "close"):
            it.close()  # stops the loader's worker processes before the next measurement


def _read_all(paths: Iterable[Path]) -> int:
    total = 0
    for p in paths:
        total += len(p.read_bytes())
    return total


def make_vimeo_tree(root: Path, clips: int, seed: int = 0) -> Path:
    """A Vimeo-90k-layout tree of synthetic 7-frame 448x256 clips saved as ordinary PNGs (Pillow's default level)."""
    for i, source in enumerate(synthetic_sources(clips, seed)):
        folder = root / "sequences" / f"{i // 100 + 1:05d}" / f"{i % 100 + 1:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        for t, frame in enumerate(source.load()[0]):
            Image.fromarray(frame).save(folder / f"im{t + 1}.png")
    return root


def run_data_benchmark(vimeo_root: Path | None = None, manifest: Path | None = None, workers: Sequence[int] = (1, 2, 4),
                       clips: int = 64, batches: int = 16, micro_batch: int = 8, frames: int = 7, crop: int = 256,
                       seed: int = 0, work: Path | None = None) -> list[Rate]:
    """Clips/s and MB/s of both loaders for each worker count. Without ``vimeo_root``/``manifest``, makes
    ``clips`` synthetic clips as a Vimeo tree and packs them with the default settings."""
    with ExitStack() as stack:
        if vimeo_root is None or manifest is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nvc1b-bench-", dir=work)))
            log.info("making %d synthetic clips in %s", clips, work)
            vimeo_root = make_vimeo_tree(work / "vimeo", clips, seed)
            manifest = pack_vimeo(vimeo_root, work / "shards", all_clips=True, jobs=2)
        manifest = manifest_path(manifest)
        folders = sorted(p.parent for p in Path(vimeo_root, "sequences").glob("*/*/im1.png"))
        m = read_manifest(manifest)
        shard_bytes = _read_all(shard_paths(manifest, m)) / m.clips
        folder_bytes = _read_all(p for f in folders for p in video.list_png_frames(f)) / len(folders)
        share = frames / m.frames_per_clip  # both loaders read only the T frames they use
        rates = []
        for n in workers:
            loaders = {
                "shards": (shard_bytes, shard_batches(manifest, frames, crop, micro_batch, n, batches + 1, seed)),
                "png-folder": (folder_bytes, png_folder_batches(folders, frames, crop, micro_batch, n, batches + 1, seed)),
            }
            for name, (per_clip, stream) in loaders.items():
                done, seconds = time_batches(stream, batches)
                rate = done / seconds
                rates.append(Rate(name, n, rate, rate * per_clip * share / 1e6))
                log.info("%s, %d workers: %.1f clips/s", name, n, rate)
        return rates


def render_table(rates: Sequence[Rate], frames: int, crop: int) -> str:
    """Side by side per worker count, with the ratio of the shard loader to the PNG-folder loader."""
    by = {(r.loader, r.workers): r for r in rates}
    lines = [f"data loading, {crop}x{crop}x{frames} crops (clips/s; MB/s of stored frames read)",
             f"{'workers':>7} | {'shards clips/s':>14} {'/worker':>8} {'MB/s':>7} | {'png-folder clips/s':>18} {'/worker':>8} {'MB/s':>7} | {'ratio':>6}"]
    for n in sorted({r.workers for r in rates}):
        s, p = by[("shards", n)], by[("png-folder", n)]
        lines.append(f"{n:>7} | {s.clips_per_s:>14.1f} {s.clips_per_s / n:>8.1f} {s.mb_per_s:>7.1f} | "
                     f"{p.clips_per_s:>18.1f} {p.clips_per_s / n:>8.1f} {p.mb_per_s:>7.1f} | {s.clips_per_s / p.clips_per_s:>5.2f}x")
    return "\n".join(lines)
