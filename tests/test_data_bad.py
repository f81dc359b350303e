"""Bad data: skipped, counted and logged with shard and key; past the allowed fraction, a one-line error naming
the worst shard; a missing shard or an empty manifest stops at once."""

import json
import logging

import pytest
import torch
from datahelpers import clip_ids, coded_shards

from nvc1b.data.loader import train_batches
from nvc1b.data.shards import index_shard
from nvc1b.errors import DataError


def run(manifest, **kw):
    args = dict(frames=3, crop=16, micro_batch=2, seed=3, stage=1, epoch=0, batches=16, rank=0, world_size=1)
    args.update(kw)
    return list(train_batches(manifest, **args))


def corrupt_member(shard, key, ext):
    """Overwrite one member's bytes in place with garbage of the same length."""
    index = index_shard(shard)
    offset, size = next(c for c in index.clips if c.key == key).members[ext]
    with open(shard, "r+b") as f:
        f.seek(offset)
        f.write(b"\x00garbage" * (size // 8) + b"\x00" * (size % 8))


def test_undecodable_png_is_skipped_logged_and_counted(tmp_path, caplog):
    manifest = coded_shards(tmp_path, [4, 4])
    shard = manifest.parent / "shard-000001.tar"
    for t in range(7):  # every frame window of clip 5 hits a broken frame
        corrupt_member(shard, "clip005", f"{t:03d}.png")
    with caplog.at_level(logging.WARNING, logger="nvc1b.data.loader"):
        batches = run(manifest, max_bad_fraction=0.2)
    assert len(batches) == 16 and all(x.shape == (2, 3, 3, 16, 16) for x in batches)
    assert 5 not in {i for x in batches for i in clip_ids(x)}
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings and all("shard-000001.tar key clip005: frame" in w and "does not decode" in w for w in warnings)


def test_resume_is_exact_across_bad_clips(tmp_path):
    manifest = coded_shards(tmp_path, [4, 4])
    corrupt_member(manifest.parent / "shard-000000.tar", "clip002", "000.png")
    full = run(manifest, frames=7, max_bad_fraction=0.3)
    resumed = run(manifest, frames=7, max_bad_fraction=0.3, start=5)
    assert all(torch.equal(x, y) for x, y in zip(full[5:], resumed, strict=False))


def test_too_many_bad_clips_stop_with_the_worst_shard(tmp_path):
    manifest = coded_shards(tmp_path, [4, 4])
    shard = manifest.parent / "shard-000000.tar"
    for key in ("clip000", "clip001", "clip002"):
        corrupt_member(shard, key, "json")
    with pytest.raises(DataError) as err:
        run(manifest)  # default: 1% (plus one clip of grace)
    message = str(err.value)
    assert "\n" not in message and "more than max_bad_fraction 1.0%" in message
    assert f"worst shard {shard}:" in message and "bad metadata" in message


def test_truncated_tar_is_counted_then_stops_the_run(tmp_path, caplog):
    manifest = coded_shards(tmp_path, [6, 6, 6])
    shard = manifest.parent / "shard-000002.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 3])
    with caplog.at_level(logging.WARNING, logger="nvc1b.data.loader"):
        with pytest.raises(DataError, match=rf"worst shard {shard}: \d+ bad, first key \S+: (clip #\d+ missing|no member|metadata)"):
            run(manifest, batches=30)
    assert any("shard-000002.tar key" in r.getMessage() for r in caplog.records)
    # within the allowance the same data trains on, without the lost clips
    batches = run(manifest, batches=30, max_bad_fraction=0.6)
    survivors = {i for x in batches for i in clip_ids(x)}
    assert survivors <= set(range(12)) | {12, 13} and len(batches) == 30


def test_clip_with_fewer_frames_than_the_stage_needs(tmp_path, caplog):
    manifest = coded_shards(tmp_path, [5, 5], short={3: 4})
    with caplog.at_level(logging.WARNING, logger="nvc1b.data.loader"):
        batches = run(manifest, frames=5, max_bad_fraction=0.2)
    assert 3 not in {i for x in batches for i in clip_ids(x)}
    assert any("key clip003: has 4 frames, the stage needs 5" in r.getMessage() for r in caplog.records)
    assert 3 in {i for x in run(manifest, frames=4) for i in clip_ids(x)}  # a 4-frame stage can use it


def test_missing_shard_and_empty_manifest_fail_at_once(tmp_path):
    manifest = coded_shards(tmp_path, [2, 2])
    (manifest.parent / "shard-000001.tar").unlink()
    with pytest.raises(DataError, match=r"manifest.json: shard .*shard-000001.tar not found"):
        train_batches(manifest, frames=2, crop=8, micro_batch=1, seed=0, stage=0, epoch=0, batches=1)
    data = json.loads(manifest.read_text())
    data["shards"] = []
    manifest.write_text(json.dumps(data))
    with pytest.raises(DataError, match="lists no shards"):
        train_batches(manifest, frames=2, crop=8, micro_batch=1, seed=0, stage=0, epoch=0, batches=1)


def test_shard_lost_during_the_run_counts_as_bad(tmp_path):
    manifest = coded_shards(tmp_path, [3, 3])
    batches = train_batches(manifest, frames=2, crop=8, micro_batch=2, seed=0, stage=0, epoch=0, batches=8)
    (manifest.parent / "shard-000001.tar").unlink()  # after the start-up check
    with pytest.raises(DataError, match=r"worst shard \S+shard-000001.tar: \d+ bad, first key #\d: shard unreadable"):
        list(batches)
