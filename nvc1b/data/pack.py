"""Packing clips into WebDataset tar shards: Vimeo-90k trees, folders of ordered images, raw YUV 4:2:0 files.

One sample = one clip: its frames as lossless RGB PNGs (``KEY.000.png`` …) plus ``KEY.json`` (source, width,
height, frames). Shards come from webdataset's ShardWriter; the manifest (shard list, clip counts, sizes, SHA-256)
is written last and atomically, so an interrupted pack leaves no manifest. YUV sources are converted to RGB with
the project's BT.709 conversion (``video.yuv420_to_rgb``) at pack time.
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import webdataset as wds
from PIL import Image
from tqdm import tqdm

from ..errors import DataError
from . import video
from .manifest import MANIFEST_NAME, ClipList, Manifest, ShardEntry, sha256_file, write_manifest

log = logging.getLogger(__name__)

DEFAULT_PNG_LEVEL = 0  # stored PNG: ~1.6x the bytes of level 6, ~3x faster to decode (see the module docstring)
SHARD_PATTERN = "shard-%06d.tar"


class ClipSource(Protocol):
    """One clip to pack: a unique key and a way to load its frames."""

    key: str

    def load(self) -> tuple[np.ndarray, str]:
        """(frames (N, H, W, 3) uint8, source description)."""


@dataclass(frozen=True)
class FolderClip:
    """Frames given as image files (a Vimeo septuplet folder, or a window of a longer frame folder)."""

    key: str
    paths: tuple[Path, ...]
    source: str

    def load(self) -> tuple[np.ndarray, str]:
        frames = [video.read_png(p) for p in self.paths]
        for p, f in zip(self.paths, frames, strict=False):
            if f.shape != frames[0].shape:
                raise DataError(f"{p}: frame is {f.shape[1]}x{f.shape[0]}, {self.paths[0].name} is {frames[0].shape[1]}x{frames[0].shape[0]}")
        return np.stack(frames), self.source


@dataclass(frozen=True)
class YuvClip:
    """A window of frames of a raw 8-bit YUV 4:2:0 file, converted to RGB."""

    key: str
    path: Path
    width: int
    height: int
    start: int
    count: int

    def load(self) -> tuple[np.ndarray, str]:
        y, u, v = video.read_yuv420(self.path, self.width, self.height, self.start, self.count)
        rgb = video.yuv420_to_rgb(video.to_float(y), video.to_float(u), video.to_float(v))  # (N, 3, H, W)
        return video.to_uint8(rgb).transpose(0, 2, 3, 1), f"{self.path}#frames={self.start}-{self.start + self.count - 1}"


def sanitize_key(text: str) -> str:
    """Tar-sample keys may not hold dots or slashes (WebDataset splits names at the first dot)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "clip"


def unique_keys(sources: Sequence[ClipSource]) -> None:
    seen: set[str] = set()
    for s in sources:
        if s.key in seen:
            raise DataError(f"two clips share the key '{s.key}'; give the inputs distinct names")
        seen.add(s.key)


VIMEO_TRAIN_LIST = "sep_trainlist.txt"
"""Vimeo-90k's training split, next to ``sequences/``: packed by default so that test clips never enter training."""


def vimeo_clip_list(root: str | Path, list_file: str | Path | None = None, all_clips: bool = False) -> Path | None:
    """The list a Vimeo pack uses: ``list_file``, else ``ROOT/sep_trainlist.txt``, else None with ``all_clips``."""
    if list_file is not None:
        return Path(list_file)
    found = Path(root) / VIMEO_TRAIN_LIST
    if found.is_file() and not all_clips:
        return found
    if all_clips:
        return None
    raise DataError(
        f"{root}: no {VIMEO_TRAIN_LIST} and no --list: packing every folder would include Vimeo-90k's test clips; "
        f"give --list FILE, or --all to pack every clip folder"
    )


def read_clip_list(list_file: str | Path) -> list[str]:
    """Clip folder names (``00001/0001``) of a list file, one a line, blank lines ignored."""
    try:
        names = [line.strip() for line in Path(list_file).read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise DataError(f"{list_file}: cannot read clip list ({exc.strerror})") from None
    if not names:
        raise DataError(f"{list_file}: clip list is empty")
    return names


def vimeo_sources(root: str | Path, list_file: str | Path | None = None) -> list[FolderClip]:
    """Clips of a Vimeo-90k tree ``ROOT/sequences/00001/0001/im1.png …``, all of them or those named in a list."""
    root = Path(root)
    seq_root = root / "sequences"
    if not seq_root.is_dir():
        raise DataError(f"{root}: no 'sequences' folder (expected ROOT/sequences/00001/0001/im1.png)")
    if list_file is not None:
        names = read_clip_list(list_file)
    else:
        names = sorted(f"{a.name}/{b.name}" for a in seq_root.iterdir() if a.is_dir() for b in a.iterdir() if b.is_dir())
        if not names:
            raise DataError(f"{seq_root}: no clip folders")
    clips = []
    for name in names:
        folder = seq_root / name
        if not folder.is_dir():
            raise DataError(f"{list_file or seq_root}: clip folder {folder} not found")
        paths = tuple(video.list_png_frames(folder))
        clips.append(FolderClip(sanitize_key(name.replace("/", "_")), paths, f"sequences/{name}"))
    return clips


def _windows(total: int, clip: int, stride: int) -> range:
    if clip < 1 or stride < 1:
        raise DataError(f"--clip and --stride must be positive, got {clip} and {stride}")
    return range(0, total - clip + 1, stride)


def folder_sources(folders: Sequence[str | Path], clip: int = 7, stride: int = 7) -> list[FolderClip]:
    """Windows of ``clip`` frames every ``stride`` frames from each folder of ordered images."""
    clips = []
    for folder in map(Path, folders):
        paths = video.list_png_frames(folder, video.IMAGE_SUFFIXES)
        windows = _windows(len(paths), clip, stride)
        if not windows:
            log.warning("%s: %d frames, fewer than one %d-frame clip; skipped", folder, len(paths), clip)
        for s in windows:
            clips.append(FolderClip(f"{sanitize_key(folder.name)}_{s:05d}", tuple(paths[s : s + clip]), f"{folder}#frames={s}-{s + clip - 1}"))
    return clips


def yuv_sources(files: Sequence[str | Path], width: int, height: int, clip: int = 7, stride: int = 7) -> list[YuvClip]:
    """Windows of ``clip`` frames every ``stride`` frames from raw 8-bit YUV 4:2:0 files of one size."""
    clips = []
    for path in map(Path, files):
        total = video.count_yuv420_frames(path, width, height)
        windows = _windows(total, clip, stride)
        if not windows:
            log.warning("%s: %d frames, fewer than one %d-frame clip; skipped", path, total, clip)
        clips.extend(YuvClip(f"{sanitize_key(path.stem)}_{s:05d}", path, width, height, s, clip) for s in windows)
    return clips


def encode_png(rgb: np.ndarray, level: int) -> bytes:
    """Lossless 8-bit RGB PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


def encode_sample(source: ClipSource, png_level: int) -> dict:
    """The WebDataset sample of one clip: frame PNGs and JSON metadata."""
    frames, description = source.load()
    n, h, w = frames.shape[:3]
    sample: dict = {"__key__": source.key}
    for t in range(n):
        sample[f"{t:03d}.png"] = encode_png(frames[t], png_level)
    sample["json"] = json.dumps({"source": description, "width": w, "height": h, "frames": n}).encode()
    return sample


class _Encoder:
    """Picklable callable for the worker pool."""

    def __init__(self, png_level: int):
        self.png_level = png_level

    def __call__(self, source: ClipSource) -> dict:
        return encode_sample(source, self.png_level)


def _one_thread() -> None:
    # a forked child must not enter the parent's OpenMP pool (it would hang); the pool gives parallelism anyway
    torch.set_num_threads(1)


def pack_clips(
    sources: Sequence[ClipSource],
    out: str | Path,
    *,
    source: str,
    shard_size: int = 1000,
    png_level: int = DEFAULT_PNG_LEVEL,
    jobs: int = 1,
    progress: bool = False,
    clip_list: ClipList | None = None,
) -> Path:
    """Write ``sources`` as shards of ``shard_size`` clips into ``out`` and return the manifest path (written last)."""
    out = Path(out)
    if not sources:
        raise DataError(f"nothing to pack into {out}: no clips")
    if shard_size < 1 or not 0 <= png_level <= 9:
        raise DataError(f"shard size must be ≥ 1 and PNG level 0..9, got {shard_size} and {png_level}")
    unique_keys(sources)
    out.mkdir(parents=True, exist_ok=True)
    if (out / MANIFEST_NAME).exists() or any(out.glob("shard-*.tar")):
        raise DataError(f"{out}: already holds a packed dataset; choose another --out or empty it")

    done: dict[str, ShardEntry] = {}
    counts: dict[str, int] = {}

    def finished(fname: str) -> None:
        path = Path(fname)
        if not counts.get(fname):  # ShardWriter opens its first shard before any sample; an error may leave it empty
            path.unlink(missing_ok=True)
            return
        done[fname] = ShardEntry(path=path.name, clips=counts[fname], bytes=path.stat().st_size, sha256=sha256_file(path))

    encoder = _Encoder(png_level)
    frames_per_clip = 0
    pool = multiprocessing.get_context("fork").Pool(jobs, initializer=_one_thread) if jobs > 1 else None
    try:
        samples = pool.imap(encoder, sources, chunksize=2) if pool else map(encoder, sources)
        # mtime fixed: the same input always gives byte-identical shards
        with wds.ShardWriter(str(out / SHARD_PATTERN), maxcount=shard_size, maxsize=1e15, post=finished, verbose=0, encoder=False, mtime=0) as writer:
            for sample in tqdm(samples, total=len(sources), desc=f"packing {out.name}", unit="clip", disable=not progress):
                writer.write(sample)
                counts[writer.fname] = counts.get(writer.fname, 0) + 1
                frames_per_clip = max(frames_per_clip, sum(k.endswith(".png") for k in sample))
    finally:
        if pool:
            pool.terminate()
    manifest = Manifest(source=source, frames_per_clip=frames_per_clip, png_level=png_level, shards=[done[f] for f in sorted(done)],
                        clip_list=clip_list)
    path = write_manifest(out, manifest)
    log.info("packed %d clips into %d shards under %s", manifest.clips, len(manifest.shards), out)
    return path


def pack_vimeo(root: str | Path, out: str | Path, list_file: str | Path | None = None, *, all_clips: bool = False,
               **kw) -> Path:
    """``nvc1b data pack vimeo``: the clips of ``list_file`` (default ``ROOT/sep_trainlist.txt``); every clip
    folder only with ``all_clips`` (``--all``). The list used is recorded in the manifest."""
    if not Path(root, "sequences").is_dir():
        raise DataError(f"{root}: no 'sequences' folder (expected ROOT/sequences/00001/0001/im1.png)")
    used = vimeo_clip_list(root, list_file, all_clips)
    clip_list = None
    if used is not None:
        clip_list = ClipList(path=str(used), sha256=sha256_file(used), names=read_clip_list(used))
        log.info("packing the %d clips listed in %s", len(clip_list.names), used)
    else:
        log.warning("packing every clip folder under %s (--all): test clips are included if the tree holds them", root)
    source = f"vimeo {root}" + (f" --list {used}" if used is not None else " --all")
    return pack_clips(vimeo_sources(root, used), out, source=source, clip_list=clip_list, **kw)


def pack_frames(folders: Sequence[str | Path], out: str | Path, clip: int = 7, stride: int = 7, **kw) -> Path:
    """``nvc1b data pack frames``: windows of ordered image folders."""
    return pack_clips(folder_sources(folders, clip, stride), out, source=f"frames {' '.join(map(str, folders))}", **kw)


def pack_yuv(
    files: Sequence[str | Path], out: str | Path, width: int, height: int, clip: int = 7, stride: int = 7, **kw
) -> Path:
    """``nvc1b data pack yuv``: windows of raw 8-bit YUV 4:2:0 files, stored as RGB."""
    sources = yuv_sources(files, width, height, clip, stride)
    return pack_clips(sources, out, source=f"yuv {width}x{height} {' '.join(map(str, files))}", **kw)
