"""The training loader: batch shapes, consecutive frames, rank splitting, equal batch counts, exact resume."""

import logging
import multiprocessing

import pytest
import torch
from datahelpers import H, clip_ids, coded_shards

from nvc1b.data.loader import batches_per_epoch, train_batches
from nvc1b.data.manifest import count_clips
from nvc1b.errors import DataError


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    # 4 shards of uneven size: 3, 5, 2, 6 clips (ids 0..15)
    return coded_shards(tmp_path_factory.mktemp("coded"), [3, 5, 2, 6])


def stream(manifest, **kw):
    args = dict(frames=3, crop=16, micro_batch=2, seed=7, stage=1, epoch=0, batches=10, rank=0, world_size=1)
    args.update(kw)
    return list(train_batches(manifest, **args))


def test_batches_are_crops_of_consecutive_frames(manifest):
    batches = stream(manifest, frames=4, crop=24)
    assert len(batches) == 10
    flips = set()
    for x in batches:
        assert x.shape == (2, 4, 3, 24, 24) and x.dtype == torch.float32 and x.is_contiguous()
        assert 0 <= x.min() and x.max() <= 1
        u8 = (x * 255).round().to(torch.uint8).numpy()
        for clip in u8:
            assert (clip[:, 0] == clip[0, 0, 0, 0]).all()  # one clip per sample
            tens = clip[:, 1].astype(int) // 10  # frame index of every pixel
            assert (tens == tens[:, :1, :1]).all()
            t = tens[:, 0, 0]
            assert list(t) == list(range(t[0], t[0] + 4)) and t[-1] <= 6  # T consecutive frames of 7
            rows, cols = clip[0, 2, :, 0].astype(int), clip[0, 1, 0, :].astype(int) % 10
            assert rows.max() < H and abs(rows[1] - rows[0]) == 1
            assert all((clip[k, 2] == clip[0, 2]).all() for k in range(4))  # same crop and flip for all frames
            flips.add((rows[1] < rows[0], (cols[1] - cols[0]) % 7 == 6))
    assert len(flips) == 4  # both flips, in every combination, happen


def test_same_arguments_same_stream_and_seeds_matter(manifest):
    a, b = stream(manifest), stream(manifest)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=False))
    for change in ({"seed": 8}, {"stage": 2}, {"epoch": 1}):
        other = stream(manifest, **change)
        assert not all(torch.equal(x, y) for x, y in zip(a, other, strict=False)), change


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_at_step_k_equals_the_uninterrupted_stream(manifest, workers):
    full = stream(manifest, batches=11, num_workers=workers)
    for k in (1, 4, 7, 11):
        resumed = stream(manifest, batches=11, start=k, num_workers=workers)
        assert len(resumed) == 11 - k
        assert all(torch.equal(x, y) for x, y in zip(full[k:], resumed, strict=False))


def test_ranks_share_every_shard_with_equal_batch_counts(manifest, monkeypatch):
    seen = {}
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        batches = stream(manifest, rank=None, world_size=None, batches=4)
        assert len(batches) == 4
        seen[rank] = [i for x in batches for i in clip_ids(x)]
    # 4 batches x 2 clips x 2 ranks = the 16 clips: the epoch's permutation gives each clip to one rank once
    assert sorted(seen[0] + seen[1]) == list(range(16))


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_one_epoch_on_4_ranks_x_2_workers_sees_every_clip_once(tmp_path, caplog):
    manifest = coded_shards(tmp_path, [3, 5, 2, 6, 3])  # 19 clips, uneven shards
    per_rank = batches_per_epoch(manifest, micro_batch=2, world_size=4)
    assert per_rank == 2  # 2 batches x 2 clips x 4 ranks = 16 positions; 3 clips left out this epoch
    seen = []
    with caplog.at_level(logging.INFO, logger="nvc1b.data.loader"):
        for rank in range(4):
            batches = stream(manifest, rank=rank, world_size=4, batches=per_rank, num_workers=2)
            assert len(batches) == per_rank
            seen += [i for x in batches for i in clip_ids(x)]
            later = stream(manifest, rank=rank, world_size=4, batches=per_rank, start=1, num_workers=2)
            assert torch.equal(later[0], batches[1])  # resume mid-epoch: the identical stream
    assert len(seen) == len(set(seen)) == 16 and set(seen) <= set(range(19))
    assert "epoch 0: 16 of the 19 clips of" in caplog.text and "each once; 3 left out" in caplog.text
    other = set()
    for rank in range(4):
        other |= {i for x in stream(manifest, rank=rank, world_size=4, batches=per_rank, epoch=1) for i in clip_ids(x)}
    assert len(other) == 16 and other != set(seen)  # a fresh permutation: other clips are left out


def _rank_main(rank, manifest, init, out):
    torch.set_num_threads(1)  # a forked child must stay out of the parent's OpenMP pool
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    ids = [i for x in stream(manifest, rank=None, world_size=None, batches=6, num_workers=1) for i in clip_ids(x)]
    gathered = [None, None]
    torch.distributed.all_gather_object(gathered, ids)
    if rank == 0:
        torch.save(gathered, out)
    torch.distributed.destroy_process_group()


def test_two_real_processes_over_gloo(manifest, tmp_path):
    ctx = multiprocessing.get_context("fork")
    init, out = f"file://{tmp_path / 'rendezvous'}", tmp_path / "ids.pt"
    procs = [ctx.Process(target=_rank_main, args=(r, manifest, init, out)) for r in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    ids0, ids1 = torch.load(out)
    assert len(ids0) == len(ids1) == 12
    # the first 4 batches of both ranks are the 16 positions of one epoch: every clip once; then a fresh order
    assert sorted(ids0[:8] + ids1[:8]) == list(range(16)) and len(set(ids0[8:] + ids1[8:])) == 8


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_worker_count_changes_the_split_not_the_count(manifest):
    for workers in (1, 3):
        batches = stream(manifest, num_workers=workers, batches=7)
        assert len(batches) == 7 and all(x.shape == (2, 3, 3, 16, 16) for x in batches)


def test_epoch_size_helpers(manifest):
    assert count_clips(manifest) == 16
    assert batches_per_epoch(manifest, micro_batch=2, world_size=2) == 4
    assert batches_per_epoch(manifest, micro_batch=32, world_size=4) == 1


def test_immediate_errors(manifest, tmp_path):
    assert len(stream(manifest, rank=7, world_size=8, batches=1)) == 1  # more ranks than shards is fine
    with pytest.raises(DataError, match="clips have 7 frames, the stage needs 8"):
        stream(manifest, frames=8)
    with pytest.raises(DataError, match="manifest not found"):
        stream(tmp_path / "nothing")
    with pytest.raises(ValueError, match="start=11 batches=10"):
        stream(manifest, start=11, batches=10)
    with pytest.raises(ValueError, match="rank 2 is outside a world of 2"):
        stream(manifest, rank=2, world_size=2)


def test_device_argument_keeps_cpu_batches(manifest):
    x = stream(manifest, device="cpu", batches=1)[0]
    assert x.device.type == "cpu" and x.shape == (2, 3, 3, 16, 16)
