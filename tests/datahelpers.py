"""Small data made on the fly for the data tests: Vimeo-layout trees, YUV files, packed shards whose pixels
say which clip and frame they come from."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nvc1b.data import video
from nvc1b.data.pack import FolderClip, pack_clips

H, W = 40, 56


def coded_frame(clip: int, t: int, h: int = H, w: int = W) -> np.ndarray:
    """R = clip id, G = 10·t + column pattern, B = row index: crops, flips and frame order stay checkable."""
    frame = np.empty((h, w, 3), dtype=np.uint8)
    frame[..., 0] = clip
    frame[..., 1] = (10 * t + np.arange(w) % 7)[None, :]
    frame[..., 2] = np.arange(h)[:, None]
    return frame


def vimeo_tree(root: Path, sequences: int = 2, clips_each: int = 3, frames: int = 7, random: bool = False) -> tuple[Path, dict[str, np.ndarray]]:
    """ROOT/sequences/0000s/000c/im1.png …; returns the root and the frames of every clip by key."""
    rng = np.random.default_rng(0)
    truth = {}
    n = 0
    for s in range(1, sequences + 1):
        for c in range(1, clips_each + 1):
            folder = root / "sequences" / f"{s:05d}" / f"{c:04d}"
            folder.mkdir(parents=True)
            clip = np.stack([rng.integers(0, 256, (H, W, 3), dtype=np.uint8) if random else coded_frame(n, t) for t in range(frames)])
            for t in range(frames):
                video.write_png(folder / f"im{t + 1}.png", clip[t])
            truth[f"{s:05d}_{c:04d}"] = clip
            n += 1
    return root, truth


def coded_shards(tmp: Path, shard_clips: list[int], frames: int = 7, short: dict[int, int] | None = None) -> Path:
    """Shards holding ``shard_clips[i]`` clips each (clip ids 0, 1, …); ``short`` gives some clips fewer frames."""
    short = short or {}
    folder = tmp / "frames"
    folder.mkdir(exist_ok=True)
    sources = []
    n = 0
    for count in shard_clips:
        for _ in range(count):
            paths = []
            for t in range(short.get(n, frames)):
                p = folder / f"c{n:03d}_{t}.png"
                video.write_png(p, coded_frame(n, t))
                paths.append(p)
            sources.append(FolderClip(f"clip{n:03d}", tuple(paths), f"clip {n}"))
            n += 1
    # pack one shard at a time so that shard sizes can differ
    out = tmp / "shards"
    manifest = None
    first = 0
    for i, count in enumerate(shard_clips):
        part = pack_clips(sources[first : first + count], tmp / f"part{i}", source="test", shard_size=count)
        first += count
        manifest = _merge(out, part, manifest, i)
    return manifest


def _merge(out: Path, part_manifest: Path, manifest: Path | None, index: int) -> Path:
    from nvc1b.data.manifest import read_manifest, write_manifest

    out.mkdir(exist_ok=True)
    part = read_manifest(part_manifest)
    entry = part.shards[0]
    name = f"shard-{index:06d}.tar"
    (part_manifest.parent / entry.path).rename(out / name)
    entry = entry.model_copy(update={"path": name})
    if manifest is None:
        merged = part.model_copy(update={"shards": [entry]})
    else:
        current = read_manifest(manifest)
        merged = current.model_copy(update={"shards": [*current.shards, entry],
                                            "frames_per_clip": max(current.frames_per_clip, part.frames_per_clip)})
    return write_manifest(out, merged)


def clip_ids(batch) -> list[int]:
    """Clip id of every sample of a float batch (B, T, 3, h, w)."""
    return [round(float(x) * 255) for x in batch[:, 0, 0, 0, 0]]
