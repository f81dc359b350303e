"""Test-set descriptions: the shipped YAML files, one-line errors naming file and key, and the frame readers."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from nvc1b.data import video
from nvc1b.data.conversions import yuv420_to_rgb8
from nvc1b.data.testsets import load_test_set, read_rgb_frames, read_yuv_frames
from nvc1b.errors import ConfigError, DataError

DATA = Path(__file__).resolve().parents[1] / "data"
EXPECTED = {"hevc_b": ("HEVC_B", 5, 1920, 1080), "hevc_c": ("HEVC_C", 4, 832, 480), "hevc_d": ("HEVC_D", 4, 416, 240),
            "hevc_e": ("HEVC_E", 3, 1280, 720), "uvg": ("UVG", 7, 1920, 1080), "mcl_jcv": ("MCL-JCV", 30, 1920, 1080)}


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_shipped_descriptions(stem, monkeypatch, tmp_path):
    monkeypatch.setenv("NVC1B_TEST_DATA", str(tmp_path))
    ts = load_test_set(DATA / f"{stem}.yaml")
    name, count, w, h = EXPECTED[stem]
    assert ts.name == name and len(ts.sequences) == count and ts.format == "yuv420"
    assert ts.frames == 96 and ts.intra_period == 32 and Path(ts.root) == tmp_path / name
    for s in ts.sequences:
        assert (s.width, s.height) == (w, h) and s.frames >= 96
        assert s.file.startswith(s.name) and s.file.endswith(".yuv") and f"{w}x{h}" in s.file
        assert ts.path(s) == tmp_path / name / s.file


def test_a_few_facts():
    hevc_b = yaml.safe_load((DATA / "hevc_b.yaml").read_text())
    assert {s["name"]: s["fps"] for s in hevc_b["sequences"]}["Kimono1"] == 24
    uvg = yaml.safe_load((DATA / "uvg.yaml").read_text())
    assert {s["name"]: s["frames"] for s in uvg["sequences"]}["ShakeNDry"] == 300


def test_unset_variable_names_file_and_key(monkeypatch):
    monkeypatch.delenv("NVC1B_TEST_DATA", raising=False)
    with pytest.raises(ConfigError, match=r"hevc_c.yaml: key 'root': environment variable NVC1B_TEST_DATA is not set"):
        load_test_set(DATA / "hevc_c.yaml")
    assert Path(load_test_set(DATA / "hevc_c.yaml", root="/x/y").root) == Path("/x/y")


def test_variable_default_and_relative_root(monkeypatch, tmp_path):
    monkeypatch.delenv("NVC1B_DATA", raising=False)
    ts = load_test_set(DATA / "synthetic.yaml")
    assert Path(ts.root) == Path.home() / ".cache/nvc1b/synthetic-v1/test"
    monkeypatch.setenv("NVC1B_DATA", str(tmp_path))
    assert Path(load_test_set(DATA / "synthetic.yaml").root) == tmp_path / "synthetic-v1/test"


def write_set(tmp_path, **changes):
    data = {"name": "t", "format": "yuv420", "root": ".", "frames": 3, "intra_period": 32,
            "sequences": [{"name": "a", "file": "a.yuv", "width": 8, "height": 6, "fps": 30, "frames": 4}]}
    data.update(changes)
    path = tmp_path / "set.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("changes, message", [
    ({"colour": "rgb"}, r"set.yaml: key 'colour': unknown key"),
    ({"frames": "many"}, r"set.yaml: key 'frames': Input should be a valid integer"),
    ({"format": "y4m"}, r"set.yaml: key 'format': Input should be 'yuv420' or 'png'"),
    ({"frames": 9}, r"set.yaml: sequences.0 \(a\) has 4 frames, fewer than the 9 to code"),
    ({"sequences": [{"name": "a", "file": "a.yuv", "width": 7, "height": 6, "fps": 30, "frames": 4}]}, r"needs even sizes"),
    ({"sequences": [{"name": "a", "file": "a.yuv", "width": 8, "height": 6, "frames": 4}]}, r"key 'sequences.0.fps': missing key"),
    ({"sequences": []}, r"key 'sequences': List should have at least 1 item"),
])
def test_bad_yaml_is_one_line_error(tmp_path, changes, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_test_set(write_set(tmp_path, **changes))
    assert "\n" not in str(err.value)


def test_missing_file_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="none.yaml: file not found"):
        load_test_set(tmp_path / "none.yaml")


def test_yuv_reader_gives_planes_and_the_rgb_test_set(tmp_path):
    rng = np.random.default_rng(5)
    y = rng.integers(0, 256, (12, 6, 8), dtype=np.uint8)
    u = rng.integers(0, 256, (12, 3, 4), dtype=np.uint8)
    v = rng.integers(0, 256, (12, 3, 4), dtype=np.uint8)
    video.write_yuv420(tmp_path / "a.yuv", y, u, v)
    ts = load_test_set(write_set(tmp_path, frames=10, sequences=[{"name": "a", "file": "a.yuv", "width": 8, "height": 6, "fps": 30, "frames": 12}]))
    seq = ts.sequences[0]
    planes = list(read_yuv_frames(ts, seq))
    assert len(planes) == 10 and torch.equal(planes[9][0], video.to_float(y[9]))
    rgb = list(read_rgb_frames(ts, seq, count=11, start=1))
    expected = torch.from_numpy(yuv420_to_rgb8(y[1:12], u[1:12], v[1:12], "dcvc")).float() / 255  # the 8-bit RGB set
    assert len(rgb) == 11 and all(torch.equal(a, b) for a, b in zip(rgb, expected, strict=True))
    centred = next(read_rgb_frames(ts, seq, count=1, conversion="centred"))
    assert torch.equal(centred, torch.from_numpy(video.to_uint8(video.yuv420_to_rgb(
        video.to_float(y[:1]), video.to_float(u[:1]), video.to_float(v[:1]))[0])).float() / 255)
    with pytest.raises(DataError, match="frames 10..12 requested but the file has 12"):
        list(read_rgb_frames(ts, seq, count=3, start=10))


def test_png_reader(tmp_path):
    folder = tmp_path / "seq"
    folder.mkdir()
    frames = np.random.default_rng(6).integers(0, 256, (3, 6, 8, 3), dtype=np.uint8)
    for t in range(3):
        video.write_png(folder / f"im{t + 1:05d}.png", frames[t])
    ts = load_test_set(write_set(tmp_path, format="png", frames=3,
                                 sequences=[{"name": "s", "file": "seq", "width": 8, "height": 6, "fps": 30, "frames": 3}]))
    rgb = list(read_rgb_frames(ts, ts.sequences[0]))
    assert torch.equal(torch.stack(rgb), torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255)
    y, u, v = next(read_yuv_frames(ts, ts.sequences[0]))
    assert y.shape == (6, 8) and u.shape == v.shape == (3, 4)
