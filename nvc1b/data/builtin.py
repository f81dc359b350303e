"""The built-in dataset: synthetic clips from bundled photographs, packed as training shards, plus a held-out
synthetic test set (raw YUV 4:2:0 files and a test-set YAML). Built on first use and cached.

    ds = ensure_builtin_dataset()          # $NVC1B_DATA/synthetic-v1, else ~/.cache/nvc1b/synthetic-v1
    ds.train_manifest, ds.test_set         # feed train_batches(...) and load_test_set(...)

Layout: ``train/`` (shards + manifest.json), ``test/`` (YUV files + synthetic.yaml), ``dataset.json`` (written
last: its presence means the build finished).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from ..errors import DataError
from . import video
from .manifest import MANIFEST_NAME
from .pack import pack_clips
from .synthetic import TEST_PHOTOS, plan_clip, render_clip, synthetic_sources
from .testsets import TestSequence, TestSet

log = logging.getLogger(__name__)

VERSION = 1
DEFAULT_CLIPS = 128
DEFAULT_SEED = 0
SIZE = (448, 256)  # Vimeo-90k's frame size: room for 256x256 crops
SHARD_SIZE = 4  # small shards so that up to DEFAULT_CLIPS / 4 ranks each get their own
PNG_LEVEL = 1
TEST_FRAMES = 32
TEST_FPS = 30
TEST_YAML = "synthetic.yaml"
MARKER = "dataset.json"
# (sequence name, camera, effect): one held-out sequence per synthetic motion
TEST_SEQUENCES = (
    ("SynthPan", "pan", "none"),
    ("SynthZoom", "zoom", "none"),
    ("SynthRotate", "rotate", "none"),
    ("SynthFade", "static", "fade"),
    ("SynthBlur", "static", "blur"),
    ("SynthSharpen", "pan", "sharpen"),
    ("SynthOcclusion", "mixed", "occlusion"),
)


@dataclass(frozen=True)
class BuiltinDataset:
    """Paths of a finished built-in dataset."""

    root: Path
    train_manifest: Path
    test_set: Path
    clips: int


def default_data_root() -> Path:
    """Cache folder for built data: $NVC1B_DATA, else ~/.cache/nvc1b."""
    return Path(os.environ.get("NVC1B_DATA") or Path.home() / ".cache" / "nvc1b").expanduser()


def synthetic_test_set(root: str = ".", seed: int = DEFAULT_SEED) -> TestSet:
    """The description of the synthetic test set (the same for every training-set size)."""
    w, h = SIZE
    sequences = [TestSequence(name=name, file=f"{name}_{w}x{h}_{TEST_FPS}.yuv", width=w, height=h, fps=TEST_FPS,
                              frames=TEST_FRAMES) for name, _, _ in TEST_SEQUENCES]
    return TestSet(name="synthetic", description=f"nvc1b built-in: held-out photos, one sequence per synthetic motion (seed {seed})",
                   format="yuv420", root=root, frames=TEST_FRAMES, intra_period=TEST_FRAMES, sequences=sequences)


def write_test_sequences(out: Path, seed: int = DEFAULT_SEED) -> Path:
    """Render the held-out test sequences as YUV 4:2:0 files and write their YAML; returns the YAML path."""
    out.mkdir(parents=True, exist_ok=True)
    test_set = synthetic_test_set(".", seed)
    for index, ((name, camera, effect), seq) in enumerate(zip(TEST_SEQUENCES, test_set.sequences, strict=False)):
        plan = plan_clip(np.random.default_rng([seed, 1_000_000 + index]), TEST_PHOTOS, TEST_FRAMES, SIZE, camera, effect)
        rgb = torch.from_numpy(render_clip(plan)).permute(0, 3, 1, 2).float().div_(255.0)  # (N, 3, H, W)
        y, u, v = video.rgb_to_yuv420(rgb)
        video.write_yuv420(out / seq.file, video.to_uint8(y), video.to_uint8(u), video.to_uint8(v))
    path = out / TEST_YAML
    header = "# Written by nvc1b's built-in dataset builder: held-out synthetic test sequences, raw 8-bit YUV 4:2:0.\n"
    path.write_text(header + yaml.safe_dump(test_set.model_dump(), sort_keys=False, width=1000))
    return path


def build_synthetic_dataset(out: str | Path, clips: int = DEFAULT_CLIPS, seed: int = DEFAULT_SEED,
                            jobs: int | None = None, progress: bool = False) -> BuiltinDataset:
    """Build the synthetic training shards and test set into ``out`` (which must not hold a dataset yet)."""
    out = Path(out)
    if clips < 1:
        raise DataError(f"--clips must be at least 1, got {clips}")
    if (out / MARKER).exists():
        raise DataError(f"{out}: already holds a built dataset; choose another --out or remove it")
    jobs = jobs or min(4, os.cpu_count() or 1)
    manifest = pack_clips(synthetic_sources(clips, seed, 7, SIZE), out / "train", source=f"synthetic clips={clips} seed={seed}",
                          shard_size=SHARD_SIZE, png_level=PNG_LEVEL, jobs=jobs, progress=progress)
    test_yaml = write_test_sequences(out / "test", seed)
    (out / MARKER).write_text(json.dumps({"version": VERSION, "clips": clips, "seed": seed}) + "\n")
    return BuiltinDataset(out, manifest, test_yaml, clips)


def open_builtin_dataset(root: str | Path) -> BuiltinDataset:
    """A finished built-in dataset at ``root``; DataError if it is not one."""
    root = Path(root)
    try:
        info = json.loads((root / MARKER).read_text())
        clips = int(info["clips"])
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError(f"{root}: not a finished built-in dataset (no readable {MARKER})") from None
    return BuiltinDataset(root, root / "train" / MANIFEST_NAME, root / "test" / TEST_YAML, clips)


def ensure_builtin_dataset(root: str | Path | None = None, clips: int = DEFAULT_CLIPS, seed: int = DEFAULT_SEED,
                           jobs: int | None = None) -> BuiltinDataset:
    """The built-in dataset at ``root`` (default: the cache), built on first use. Safe when several processes race:
    each builds into its own temporary folder and the first rename wins."""
    if root is None:
        name = f"synthetic-v{VERSION}" + ("" if (clips, seed) == (DEFAULT_CLIPS, DEFAULT_SEED) else f"-c{clips}-s{seed}")
        root = default_data_root() / name
    root = Path(root)
    if (root / MARKER).exists():
        return open_builtin_dataset(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    log.info("building the built-in dataset (%d clips) in %s", clips, root)
    try:
        build_synthetic_dataset(tmp, clips, seed, jobs)
        try:
            os.rename(tmp, root)
        except OSError:
            if not (root / MARKER).exists():
                raise DataError(f"{root}: exists and is not a built-in dataset; remove it or choose another root") from None
            log.info("another process finished %s first; using its copy", root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return open_builtin_dataset(root)
