"""The named YUV 4:2:0 → RGB conversions against their formulas written out here, 10-bit sources read as 10-bit
and refused when declared otherwise, and ``nvc1b data rgb`` writing a test set's PNG set."""

import numpy as np
import pytest
import torch

from nvc1b.cli.main import main
from nvc1b.data import video
from nvc1b.data.conversions import yuv420_to_rgb, yuv420_to_rgb8
from nvc1b.data.testsets import load_test_set, read_rgb_frames, read_yuv_frames
from nvc1b.errors import DataError
from nvc1b.eval.protocol import check_sources


def corner_aligned_bilinear(c):
    """DCVC's chroma upsampling, from its description: output sample i of 2n reads the input at i·(n−1)/(2n−1)
    (the first and last samples of input and output coincide), linearly between the two neighbours; per axis."""

    def along(a, axis):
        n = a.shape[axis]
        pos = np.arange(2 * n) * (n - 1) / (2 * n - 1) if n > 1 else np.zeros(2 * n)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n - 1)
        w = pos - lo
        shape = [1] * a.ndim
        shape[axis] = 2 * n
        return np.take(a, lo, axis) * (1 - w.reshape(shape)) + np.take(a, hi, axis) * w.reshape(shape)

    return along(along(c, -2), -1)


def dcvc_rgb8(y, u, v, top=255.0):
    """DCVC's released YUV420 → RGB PNG conversion, re-implemented from its description: samples over the largest
    code, chroma corner-aligned bilinear ×2, full-range BT.709 around 0.5, clip to [0, 1], ×255, round half-even."""
    kr, kb = 0.2126, 0.0722
    luma = y / top
    cb, cr = corner_aligned_bilinear(u / top) - 0.5, corner_aligned_bilinear(v / top) - 0.5
    r = luma + (2 - 2 * kr) * cr
    b = luma + (2 - 2 * kb) * cb
    g = (luma - kr * r - kb * b) / (1 - kr - kb)
    return np.clip(np.rint(np.clip(np.stack([r, g, b], axis=1), 0, 1) * 255), 0, 255).astype(np.uint8)


def natural_clip(frames=3, height=48, width=64, seed=0):
    """Smooth random YUV 4:2:0 planes (N, H, W), (N, H/2, W/2) ×2 as uint8, with strong colours near the range ends."""
    rng = np.random.default_rng(seed)
    rgb = torch.nn.functional.avg_pool2d(torch.from_numpy(rng.random((frames, 3, height, width))), 5, 1, 2)
    rgb = ((rgb - 0.5) * 2.5 + 0.5).clamp(0, 1)
    return tuple(video.to_uint8(p) for p in video.rgb_to_yuv420(rgb))


def test_dcvc_conversion_equals_its_formula_to_the_last_code_value():
    for seed, (h, w) in enumerate([(48, 64), (6, 10), (2, 2)]):
        y, u, v = natural_clip(3, h, w, seed)
        expected = dcvc_rgb8(*(p.astype(np.float64) for p in (y, u, v)))
        assert np.array_equal(yuv420_to_rgb8(y, u, v, "dcvc"), expected)


def test_dcvc_chroma_upsampling_is_scipy_zoom_order_1():
    """The interpolation DCVC's script calls, scipy.ndimage.zoom(order=1), agrees with the description above."""
    ndimage = pytest.importorskip("scipy.ndimage")
    u = np.random.default_rng(1).random((2, 5, 7))
    np.testing.assert_allclose(ndimage.zoom(u, (1, 2, 2), order=1), corner_aligned_bilinear(u), atol=1e-12)


def test_the_conversions_differ_only_where_chroma_varies():
    """Corner-aligned and centre-sited upsampling agree on flat chroma and differ on varying chroma; the FFmpeg-style
    ones differ everywhere (limited range)."""
    y, u, v = natural_clip(2, 64, 96, 3)
    dcvc = yuv420_to_rgb8(y, u, v, "dcvc").astype(float)
    assert np.abs(dcvc - yuv420_to_rgb8(y, u, v, "centred")).mean() > 0
    assert np.abs(dcvc - yuv420_to_rgb8(y, u, v, "ffmpeg-bt709")).mean() > 2
    flat = np.full_like(u, 77), np.full_like(v, 181)
    assert np.array_equal(yuv420_to_rgb8(y, *flat, "dcvc"), yuv420_to_rgb8(y, *flat, "centred"))


@pytest.mark.parametrize("name, kr, kb", [("ffmpeg-bt709", 0.2126, 0.0722), ("ffmpeg-default", 0.299, 0.114)])
def test_ffmpeg_style_conversions_are_limited_range_with_repeated_chroma(name, kr, kb):
    y = np.array([[[16, 235], [126, 60]]], dtype=np.uint8)
    u, v = np.array([[[90]]], dtype=np.uint8), np.array([[[200]]], dtype=np.uint8)
    rgb = yuv420_to_rgb(y, u, v, name)[0].numpy()
    luma = (y[0].astype(float) - 16) / 219
    cb, cr = (90 - 128) / 224, (200 - 128) / 224
    r = luma + (2 - 2 * kr) * cr
    b = luma + (2 - 2 * kb) * cb
    g = (luma - kr * r - kb * b) / (1 - kr - kb)
    np.testing.assert_allclose(rgb, np.clip(np.stack([r, g, b]), 0, 1), atol=1e-12)
    grey = yuv420_to_rgb(np.array([[[16, 235]] * 2]), np.full((1, 1, 1), 128), np.full((1, 1, 1), 128), name)
    assert grey[0, :, 0, 0].tolist() == [0.0] * 3 and grey[0, :, 0, 1].tolist() == [1.0] * 3


def write_set(root, name, fmt_bits, declared_bits, frames=3, w=8, h=6):
    rng = np.random.default_rng(7)
    top = (1 << fmt_bits) - 1
    planes = [rng.integers(0, top + 1, (frames, *s)) for s in ((h, w), (h // 2, w // 2), (h // 2, w // 2))]
    video.write_yuv420(root / f"{name}.yuv", *planes, bit_depth=fmt_bits)
    path = root / f"{name}.yaml"
    path.write_text(f"name: {name}\nformat: yuv420\nbit_depth: {declared_bits}\nroot: .\nframes: 2\nintra_period: 2\n"
                    f"sequences:\n  - {{name: S, file: {name}.yuv, width: {w}, height: {h}, fps: 30, frames: {frames}}}\n")
    return load_test_set(path), planes


def test_a_10_bit_source_is_read_as_10_bit_and_converted_as_dcvc_does(tmp_path):
    test_set, (y, u, v) = write_set(tmp_path, "ten", 10, 10)
    check_sources(test_set, 2)
    yf, uf, _ = next(read_yuv_frames(test_set, test_set.sequences[0]))
    assert torch.equal(yf, torch.from_numpy(y[0].astype(np.float32)) / 1023) and uf.max() <= 1
    rgb = torch.stack(list(read_rgb_frames(test_set, test_set.sequences[0], 2)))
    expected = dcvc_rgb8(*(p[:2].astype(np.float64) for p in (y, u, v)), top=1023.0)
    assert np.array_equal(video.to_uint8(rgb), expected)


def test_a_file_of_another_depth_than_declared_is_a_one_line_error(tmp_path, capsys):
    ten_as_eight, _ = write_set(tmp_path, "a", 10, 8)
    with pytest.raises(DataError, match=r"a\.yuv: holds 6 8x6 8-bit frames but the YAML declares 3 \(wrong bit_depth"):
        check_sources(ten_as_eight, 2)
    eight_as_ten, _ = write_set(tmp_path, "b", 8, 10, frames=4)
    with pytest.raises(DataError, match=r"b\.yuv: holds 2 8x6 10-bit frames but the YAML declares 4"):
        check_sources(eight_as_ten, 2)
    code = main(["data", "rgb", str(tmp_path / "a.yaml"), "--out", str(tmp_path / "rgb")])
    err = capsys.readouterr().err
    assert code != 0 and "a.yuv: holds 6" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "rgb").exists()


def test_cli_data_rgb_writes_the_png_set_by_the_chosen_conversion(tmp_path, capsys):
    test_set, (y, u, v) = write_set(tmp_path, "eight", 8, 8)
    for conversion in ("dcvc", "ffmpeg-default"):
        out = tmp_path / conversion
        assert main(["data", "rgb", str(tmp_path / "eight.yaml"), "--out", str(out), "--conversion", conversion]) == 0
        assert "eight.yaml" in capsys.readouterr().out
        rgb_set = load_test_set(out / "eight.yaml")
        assert rgb_set.format == "png" and rgb_set.sequences[0].frames == 3 and conversion in rgb_set.description
        written = np.stack([video.read_png(p) for p in video.list_png_frames(out / "S")]).transpose(0, 3, 1, 2)
        assert np.array_equal(written, yuv420_to_rgb8(y, u, v, conversion))
        assert sorted(p.name for p in out.iterdir()) == ["S", "eight.yaml"]
