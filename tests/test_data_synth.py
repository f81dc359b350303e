"""The built-in synthetic dataset: deterministic, real motions, cached, safe to build from racing processes."""

import multiprocessing
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from nvc1b.data import builtin, synthetic
from nvc1b.data.loader import train_batches
from nvc1b.data.manifest import read_manifest, verify_manifest
from nvc1b.data.testsets import load_test_set, read_rgb_frames

DATA = Path(__file__).resolve().parents[1] / "data"


def test_small_build_is_deterministic_and_complete(tmp_path):
    a = builtin.build_synthetic_dataset(tmp_path / "a", clips=6, seed=1, jobs=2)
    b = builtin.build_synthetic_dataset(tmp_path / "b", clips=6, seed=1, jobs=1)
    ma, mb = read_manifest(a.train_manifest), read_manifest(b.train_manifest)
    assert ma.clips == 6 and [s.clips for s in ma.shards] == [4, 2] and verify_manifest(a.train_manifest) == []
    assert [s.sha256 for s in ma.shards] == [s.sha256 for s in mb.shards]
    for f in sorted((tmp_path / "a" / "test").glob("*.yuv")):
        assert f.read_bytes() == (tmp_path / "b" / "test" / f.name).read_bytes()
    assert synthetic.synthetic_sources(2, seed=2)[1].plan != synthetic.synthetic_sources(2, seed=1)[1].plan

    ts = load_test_set(a.test_set)
    shipped = load_test_set(DATA / "synthetic.yaml", root=tmp_path)
    assert ts.sequences == shipped.sequences and ts.frames == shipped.frames == 32
    frames = list(read_rgb_frames(ts, ts.sequence("SynthPan")))
    assert len(frames) == 32 and frames[0].shape == (3, 256, 448)
    batch = next(iter(train_batches(a.train_manifest, frames=7, micro_batch=2, seed=0, stage=0, epoch=0, batches=1)))
    assert batch.shape == (2, 7, 3, 256, 256)


def plan(camera, effect, frames=7, seed=0):
    return synthetic.plan_clip(np.random.default_rng(seed), synthetic.TRAIN_PHOTOS, frames, (96, 64), camera, effect)


def sharpness(frame):
    return float(np.abs(np.diff(frame.astype(float), axis=1)).mean())


def test_motions_and_effects_do_what_they_say():
    still = synthetic.render_clip(plan("static", "none"))
    assert all(np.array_equal(still[0], f) for f in still)
    pan = plan("pan", "none")
    assert pan.velocity != (0.0, 0.0)
    moving = synthetic.render_clip(pan)
    assert not np.array_equal(moving[0], moving[1])
    blur = synthetic.render_clip(plan("static", "blur"))
    assert sharpness(blur[6]) < 0.8 * sharpness(blur[0])
    sharpen = synthetic.render_clip(plan("static", "sharpen"))
    assert sharpness(sharpen[0]) < 0.8 * sharpness(sharpen[6])
    fade = plan("static", "fade", seed=3)
    fading = synthetic.render_clip(fade).astype(float)
    first = synthetic.render_clip(plan("static", "none", seed=3))[0]
    assert np.abs(fading[0] - first).mean() < 1 and np.abs(fading[6] - first).mean() > 5
    occluded = plan("static", "occlusion")
    assert 1 <= len(occluded.patches) <= 3
    frames = synthetic.render_clip(occluded)
    assert any(not np.array_equal(frames[0], f) for f in frames[1:])


def test_long_test_sequences_stay_inside_the_photo():
    for seed in range(6):
        p = synthetic.plan_clip(np.random.default_rng(seed), synthetic.TEST_PHOTOS, 32, (448, 256), "mixed", "none")
        frames = synthetic.render_clip(p)
        # the affine view never samples outside the photo: no black (fill) borders
        assert (frames.reshape(32, -1, 3).max(axis=2) > 0).mean() > 0.97 or p.photo == "cell"


def _ensure(root, out):
    torch.set_num_threads(1)  # a forked child must stay out of the parent's OpenMP pool
    ds = builtin.ensure_builtin_dataset(root, clips=3, jobs=1)
    Path(out).write_text(str(ds.train_manifest))


def test_ensure_builds_once_and_survives_a_race(tmp_path, monkeypatch):
    root = tmp_path / "cache" / "ds"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_ensure, args=(root, tmp_path / f"out{i}")) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert (tmp_path / "out0").read_text() == (tmp_path / "out1").read_text() == str(root / "train" / "manifest.json")
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["ds"]  # no temporary folders left
    stamp = (root / "dataset.json").stat().st_mtime_ns
    ds = builtin.ensure_builtin_dataset(root, clips=3)
    assert ds.clips == 3 and (root / "dataset.json").stat().st_mtime_ns == stamp
    monkeypatch.setenv("NVC1B_DATA", str(tmp_path / "env"))
    assert builtin.default_data_root() == tmp_path / "env"


@pytest.mark.slow  # ~15 s on 2 cores
def test_default_build_under_a_minute(tmp_path):
    start = time.perf_counter()
    ds = builtin.build_synthetic_dataset(tmp_path / "default")
    assert time.perf_counter() - start < 60
    assert read_manifest(ds.train_manifest).clips == builtin.DEFAULT_CLIPS
