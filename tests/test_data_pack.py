"""Packing into WebDataset shards and reading everything back bit-exactly."""

import json

import numpy as np
import pytest
import torch
import webdataset as wds
from datahelpers import H, W, vimeo_tree

from nvc1b.data import pack, video
from nvc1b.data.manifest import count_clips, read_manifest, verify_manifest
from nvc1b.data.shards import index_shard, iter_clips
from nvc1b.errors import DataError


def test_vimeo_tree_round_trip_bit_exact(tmp_path):
    root, truth = vimeo_tree(tmp_path / "vimeo", random=True)
    manifest = pack.pack_vimeo(root, tmp_path / "out", all_clips=True, shard_size=4, jobs=2)
    m = read_manifest(manifest)
    assert [s.clips for s in m.shards] == [4, 2] and m.clips == count_clips(tmp_path / "out") == 6
    assert m.frames_per_clip == 7 and verify_manifest(manifest) == []
    assert not list((tmp_path / "out").glob(".manifest-*"))  # the atomic write left no temporary file
    seen = {}
    for key, meta, frames in iter_clips(manifest):
        assert meta["width"] == W and meta["height"] == H and meta["frames"] == 7
        assert meta["source"] == f"sequences/{key[:5]}/{key[6:]}"
        seen[key] = frames
    assert list(seen) == sorted(truth)
    for key, frames in seen.items():
        assert frames.dtype == np.uint8 and np.array_equal(frames, truth[key])


def test_shards_are_plain_webdataset(tmp_path):
    root, truth = vimeo_tree(tmp_path / "vimeo", sequences=1, clips_each=2, random=True)
    manifest = pack.pack_vimeo(root, tmp_path / "out", all_clips=True, jobs=1)
    shard = str(manifest.parent / read_manifest(manifest).shards[0].path)
    samples = list(wds.WebDataset(shard, shardshuffle=False).decode("rgb8"))
    assert [s["__key__"] for s in samples] == ["00001_0001", "00001_0002"]
    for s in samples:
        assert s["json"]["frames"] == 7  # webdataset's own decoders read our PNG and JSON members
        assert np.array_equal(s["003.png"], truth[s["__key__"]][3])


def test_vimeo_list_selects_and_orders_clips(tmp_path):
    root, truth = vimeo_tree(tmp_path / "vimeo", random=True)
    (tmp_path / "list.txt").write_text("00002/0003\n00001/0001\n\n")
    manifest = pack.pack_vimeo(root, tmp_path / "out", tmp_path / "list.txt")
    clips = list(iter_clips(manifest))
    assert [k for k, _, _ in clips] == ["00002_0003", "00001_0001"]
    assert np.array_equal(clips[0][2], truth["00002_0003"])
    used = read_manifest(manifest).clip_list
    assert used.path == str(tmp_path / "list.txt") and used.names == ["00002/0003", "00001/0001"]


def test_vimeo_train_list_keeps_test_clips_out(tmp_path):
    root, _ = vimeo_tree(tmp_path / "vimeo", sequences=2, clips_each=3)  # 6 folders; 2 of them are "test" clips
    with pytest.raises(DataError) as info:
        pack.pack_vimeo(root, tmp_path / "none")
    assert "no sep_trainlist.txt and no --list" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "none" / "manifest.json").exists()
    (root / "sep_trainlist.txt").write_text("00001/0001\n00001/0002\n00002/0001\n00002/0003\n")
    m = read_manifest(pack.pack_vimeo(root, tmp_path / "train"))
    assert m.clips == 4 and m.clip_list.path == str(root / "sep_trainlist.txt")
    assert m.clip_list.names == ["00001/0001", "00001/0002", "00002/0001", "00002/0003"]
    assert [k for k, _, _ in iter_clips(tmp_path / "train")] == ["00001_0001", "00001_0002", "00002_0001", "00002_0003"]
    every = read_manifest(pack.pack_vimeo(root, tmp_path / "all", all_clips=True))
    assert every.clips == 6 and every.clip_list is None and every.source.endswith("--all")


def test_yuv_file_round_trip_matches_the_bt709_conversion(tmp_path):
    rng = np.random.default_rng(3)
    w, h, n = 16, 12, 10
    y = rng.integers(0, 256, (n, h, w), dtype=np.uint8)
    u = rng.integers(0, 256, (n, h // 2, w // 2), dtype=np.uint8)
    v = rng.integers(0, 256, (n, h // 2, w // 2), dtype=np.uint8)
    path = tmp_path / "seq.yuv"
    video.write_yuv420(path, y, u, v)
    manifest = pack.pack_yuv([path], tmp_path / "out", w, h, clip=4, stride=3, shard_size=2)
    clips = list(iter_clips(manifest))
    assert [k for k, _, _ in clips] == ["seq_00000", "seq_00003", "seq_00006"]
    expected = video.to_uint8(video.yuv420_to_rgb(video.to_float(y), video.to_float(u), video.to_float(v)))
    for (key, meta, frames), start in zip(clips, (0, 3, 6), strict=False):
        assert meta["frames"] == 4 and meta["source"].endswith(f"#frames={start}-{start + 3}")
        assert np.array_equal(frames, expected[start : start + 4].transpose(0, 2, 3, 1))


def test_frame_folders_cut_into_windows(tmp_path):
    folder = tmp_path / "cam.a"
    folder.mkdir()
    rng = np.random.default_rng(4)
    frames = rng.integers(0, 256, (9, 8, 10, 3), dtype=np.uint8)
    for t in range(9):
        video.write_png(folder / f"f{t + 1}.png", frames[t])
    manifest = pack.pack_frames([folder], tmp_path / "out", clip=4, stride=4, png_level=6)
    clips = list(iter_clips(manifest))
    assert [k for k, _, _ in clips] == ["cam-a_00000", "cam-a_00004"]  # dots never reach a WebDataset key
    assert np.array_equal(clips[1][2], frames[4:8]) and read_manifest(manifest).png_level == 6


def test_same_input_gives_byte_identical_shards(tmp_path):
    root, _ = vimeo_tree(tmp_path / "vimeo", sequences=1, clips_each=2)
    a = read_manifest(pack.pack_vimeo(root, tmp_path / "a", all_clips=True))
    b = read_manifest(pack.pack_vimeo(root, tmp_path / "b", all_clips=True, jobs=2))
    assert [s.sha256 for s in a.shards] == [s.sha256 for s in b.shards]


def test_pack_errors_are_one_line(tmp_path):
    root, _ = vimeo_tree(tmp_path / "vimeo", sequences=1, clips_each=1)
    pack.pack_vimeo(root, tmp_path / "out", all_clips=True)
    with pytest.raises(DataError, match="already holds a packed dataset"):
        pack.pack_vimeo(root, tmp_path / "out", all_clips=True)
    with pytest.raises(DataError, match="no 'sequences' folder"):
        pack.pack_vimeo(tmp_path, tmp_path / "o2")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(DataError, match="clip list is empty"):
        pack.pack_vimeo(root, tmp_path / "o3", tmp_path / "empty.txt")
    (tmp_path / "bad.txt").write_text("00009/0001\n")
    with pytest.raises(DataError, match="clip folder .*00009/0001 not found"):
        pack.pack_vimeo(root, tmp_path / "o4", tmp_path / "bad.txt")
    (root / "sequences" / "00001" / "0001" / "im3.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"im3.png: cannot decode PNG"):
        pack.pack_vimeo(root, tmp_path / "o5", all_clips=True)
    assert not (tmp_path / "o5" / "manifest.json").exists()  # an interrupted pack leaves no manifest


def test_yuv_too_short_for_a_clip_is_nothing_to_pack(tmp_path):
    path = tmp_path / "short.yuv"
    z = np.zeros((2, 4, 4), np.uint8)
    video.write_yuv420(path, z, z[:, :2, :2], z[:, :2, :2])
    with pytest.raises(DataError, match="no clips"):
        pack.pack_yuv([path], tmp_path / "out", 4, 4, clip=7)


def test_manifest_errors(tmp_path):
    with pytest.raises(DataError, match="manifest not found"):
        read_manifest(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="malformed manifest JSON at line 1"):
        read_manifest(bad)
    bad.write_text(json.dumps({"source": "x", "frames_per_clip": 7, "png_level": 0, "shards": []}))
    with pytest.raises(DataError, match="lists no shards"):
        read_manifest(bad)
    bad.write_text(json.dumps({"source": "x", "frames_per_clip": 7, "png_level": 0, "shards": [{"path": "a.tar", "clips": 0, "bytes": 1, "sha256": "x"}]}))
    with pytest.raises(DataError, match=r"bad.json: key 'shards.0.clips'"):
        read_manifest(bad)


def test_index_survives_truncation(tmp_path):
    root, truth = vimeo_tree(tmp_path / "vimeo", sequences=1, clips_each=3, random=True)
    manifest = pack.pack_vimeo(root, tmp_path / "out", all_clips=True)
    shard = manifest.parent / "shard-000000.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[: int(len(data) * 0.6)])
    index = index_shard(shard)
    assert index.problem and 1 <= len(index.clips) <= 2
    with pytest.raises(DataError, match=r"shard-000000.tar: clip #\d"):
        list(iter_clips(manifest))
    assert torch.equal(torch.from_numpy(next(iter_clips(manifest))[2]), torch.from_numpy(truth["00001_0001"]))
