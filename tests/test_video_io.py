"""Raw YUV 4:2:0 I/O and the BT.709 conversion, checked against direct numpy computation."""

import numpy as np
import pytest
import torch

from nvc1b.data import video
from nvc1b.errors import DataError


def test_yuv420_round_trip_bit_exact(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 256, (3, 6, 8), dtype=np.uint8)
    u = rng.integers(0, 256, (3, 3, 4), dtype=np.uint8)
    v = rng.integers(0, 256, (3, 3, 4), dtype=np.uint8)
    path = tmp_path / "clip.yuv"
    video.write_yuv420(path, y, u, v)
    assert path.stat().st_size == 3 * 8 * 6 * 3 // 2
    assert video.count_yuv420_frames(path, 8, 6) == 3
    y2, u2, v2 = video.read_yuv420(path, 8, 6, start=1, count=2)
    assert np.array_equal(y2, y[1:]) and np.array_equal(u2, u[1:]) and np.array_equal(v2, v[1:])


def test_bt709_matches_numpy():
    rng = np.random.default_rng(1)
    rgb = rng.random((2, 3, 4, 6))
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    cb = (b - y) / 1.8556 + 0.5
    cr = (r - y) / 1.5748 + 0.5
    yt, ut, vt = video.rgb_to_yuv420(torch.tensor(rgb, dtype=torch.float64))
    np.testing.assert_allclose(yt.numpy(), np.clip(y, 0, 1), atol=1e-12)
    np.testing.assert_allclose(ut.numpy(), np.clip(cb.reshape(2, 2, 2, 3, 2).mean(axis=(2, 4)), 0, 1), atol=1e-12)
    np.testing.assert_allclose(vt.numpy(), np.clip(cr.reshape(2, 2, 2, 3, 2).mean(axis=(2, 4)), 0, 1), atol=1e-12)
    # flat chroma: the inverse is exact (no chroma interpolation error)
    flat = np.repeat(np.repeat(rgb[:, :, ::2, ::2], 2, axis=2), 2, axis=3).mean(axis=1, keepdims=True).repeat(3, 1)
    yy, uu, vv = video.rgb_to_yuv420(torch.tensor(flat))
    np.testing.assert_allclose(video.yuv420_to_rgb(yy, uu, vv).numpy(), flat, atol=1e-12)


def test_bad_yuv_files_are_one_line_errors(tmp_path):
    path = tmp_path / "odd.yuv"
    path.write_bytes(b"\0" * 100)
    with pytest.raises(DataError, match=r"odd.yuv: 100 bytes is not a whole number of 8x6 8-bit YUV420 frames"):
        video.count_yuv420_frames(path, 8, 6)
    with pytest.raises(DataError, match="not found"):
        video.read_yuv420(tmp_path / "none.yuv", 8, 6)
    with pytest.raises(DataError, match="even"):
        video.read_yuv420(path, 7, 6)
    with pytest.raises(DataError, match="WIDTHxHEIGHT"):
        video.parse_size("1920by1080")


def test_png_folder_natural_order_and_errors(tmp_path):
    for i in (1, 2, 10):
        video.write_png(tmp_path / f"im{i}.png", np.full((4, 6, 3), i, dtype=np.uint8))
    frames = video.read_png_folder(tmp_path)
    assert frames.shape == (3, 4, 6, 3) and [f[0, 0, 0] for f in frames] == [1, 2, 10]
    (tmp_path / "im11.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="im11.png: cannot decode PNG"):
        video.read_png_folder(tmp_path)


def test_10_bit_yuv_round_trip_and_out_of_range_samples(tmp_path):
    rng = np.random.default_rng(4)
    y, u, v = (rng.integers(0, 1024, s).astype(np.uint16) for s in ((2, 6, 8), (2, 3, 4), (2, 3, 4)))
    path = tmp_path / "ten.yuv"
    video.write_yuv420(path, y, u, v, bit_depth=10)
    assert path.stat().st_size == 2 * video.yuv420_frame_bytes(8, 6, 10) == 2 * 2 * 72
    y2, u2, v2 = video.read_yuv420(path, 8, 6, start=1, count=1, bit_depth=10)
    assert np.array_equal(y2[0], y[1]) and np.array_equal(v2[0], v[1]) and y2.dtype == np.uint16
    assert torch.equal(video.to_float(y2[0], 10), torch.from_numpy(y[1].astype(np.float32)) / 1023)
    path.write_bytes(np.full(2 * 72, 0xFFFF, "<u2").tobytes())
    with pytest.raises(DataError, match=r"ten.yuv: frame 0 holds samples above 1023: not a 10-bit file"):
        video.read_yuv420(path, 8, 6, bit_depth=10)
