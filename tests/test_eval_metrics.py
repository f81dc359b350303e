"""The evaluator's metrics and colour handling against direct numpy computation: PSNR, (6Y+U+V)/8 on the integer
and the float output, the conversions the protocols apply to inputs and reconstructions, MS-SSIM's limits."""

import math

import numpy as np
import pytest
import torch

from nvc1b.eval.metrics import Planes, measure, ms_ssim, psnr, yuv_psnr
from nvc1b.eval.protocol import planes_from_rgb, planes_from_yuv
from nvc1b.eval.results import PSNR_CAP, frame_row

KR, KB = 0.2126, 0.0722


def numpy_yuv444(rgb):
    """Full-range BT.709 RGB (3, H, W) → Y, Cb, Cr written out by hand."""
    r, g, b = rgb
    y = KR * r + (1 - KR - KB) * g + KB * b
    return y, (b - y) / (2 * (1 - KB)) + 0.5, (r - y) / (2 * (1 - KR)) + 0.5


def numpy_to_u8(x):
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def test_psnr_matches_numpy():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 16, 24), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-9, 10, a.shape), 0, 255).astype(np.uint8)
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / mse), abs=1e-12)
    assert psnr(a, a) == math.inf
    assert psnr(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(psnr(a, b))


def test_yuv_psnr_weights_six_one_one():
    assert yuv_psnr(40.0, 32.0, 48.0) == pytest.approx((6 * 40 + 32 + 48) / 8)


def test_rgb_output_planes_match_numpy():
    """rgb: the decoder writes 8-bit RGB; the integer YUV planes are the 4:2:0 conversion of that 8-bit frame, the
    float ones of the float frame."""
    rng = np.random.default_rng(1)
    x_hat = rng.random((3, 8, 12)).astype(np.float32)
    planes = planes_from_rgb(torch.from_numpy(x_hat))
    expected_rgb8 = numpy_to_u8(x_hat)
    assert np.array_equal(planes.rgb, expected_rgb8) and np.array_equal(planes.rgb_float, x_hat.astype(np.float64))
    pool = lambda c: c.reshape(4, 2, 6, 2).mean(axis=(1, 3))
    ny, ncb, ncr = numpy_yuv444(expected_rgb8.astype(np.float64) / 255)
    y, u, v = planes.yuv
    assert np.abs(y.astype(int) - numpy_to_u8(ny).astype(int)).max() <= 1  # float32 vs float64 at .5 boundaries
    assert np.abs(u.astype(int) - numpy_to_u8(pool(ncb)).astype(int)).max() <= 1
    assert np.abs(v.astype(int) - numpy_to_u8(pool(ncr)).astype(int)).max() <= 1
    assert np.mean(y == numpy_to_u8(ny)) > 0.99
    fy, fcb, _ = numpy_yuv444(x_hat.astype(np.float64))
    np.testing.assert_allclose(planes.yuv_float[0], np.clip(fy, 0, 1), atol=1e-12)
    np.testing.assert_allclose(planes.yuv_float[1], np.clip(pool(fcb), 0, 1), atol=1e-12)


def test_yuv_output_planes_round_the_float_planes_and_convert_to_rgb():
    """A YUV output: integer planes are the float ones rounded; with flat chroma every conversion is exact."""
    rng = np.random.default_rng(3)
    y = torch.from_numpy(rng.random((4, 6)))
    u, v = torch.full((2, 3), 100 / 255.0, dtype=torch.float64), torch.full((2, 3), 170 / 255.0, dtype=torch.float64)
    planes = planes_from_yuv(y, u, v, 8, "dcvc")
    assert np.array_equal(planes.yuv[0], np.round(y.numpy() * 255).astype(np.uint8))
    assert np.array_equal(planes.yuv_float[0], y.numpy())
    yf, cb, cr = np.round(y.numpy() * 255) / 255.0, 100 / 255.0 - 0.5, 170 / 255.0 - 0.5
    r = yf + 2 * (1 - KR) * cr
    b = yf + 2 * (1 - KB) * cb
    g = (yf - KR * r - KB * b) / (1 - KR - KB)
    assert np.array_equal(planes.rgb, np.clip(np.rint(np.stack([r, g, b]) * 255), 0, 255).astype(np.uint8))


def test_measure_combines_planes_and_caps_lossless_frames():
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (3, 8, 8), dtype=np.uint8)
    y, u, v = (rng.integers(0, 256, s, dtype=np.uint8) for s in ((8, 8), (4, 4), (4, 4)))
    floats = lambda *a: tuple(p.astype(np.float64) / 255 for p in a)
    ref = Planes(rgb, (y, u, v), *floats(rgb), floats(y, u, v))
    y_hat = y.copy()
    y_hat[0, 0] ^= 1
    y_float = y_hat / 255.0 + 0.001  # the float output before rounding differs everywhere, slightly
    quality = measure(ref, Planes(rgb, (y_hat, u, v), *floats(rgb), (y_float, *floats(u, v))))
    assert quality.psnr_rgb == math.inf and quality.psnr_u == math.inf and quality.psnr_rgb_float == math.inf
    assert quality.psnr_y == pytest.approx(10 * np.log10(255**2 * 64))
    assert quality.psnr_y_float == pytest.approx(10 * np.log10(1 / np.mean((y / 255.0 - y_float) ** 2)))
    assert quality.ms_ssim is None  # 8x8 is too small for five scales
    row = frame_row(0, "I", 100, 64, quality, 0.1, 0.2, payload_bytes=96)
    assert row.psnr_rgb == PSNR_CAP and row.psnr_u == PSNR_CAP and row.psnr_u_float == PSNR_CAP
    assert row.psnr_yuv == pytest.approx((6 * quality.psnr_y + 2 * PSNR_CAP) / 8)
    assert row.psnr_yuv_float == pytest.approx((6 * quality.psnr_y_float + 2 * PSNR_CAP) / 8)
    assert row.bpp == pytest.approx(8 * 100 / 64) and row.payload_bytes == 96


def test_ms_ssim_is_one_for_equal_frames_and_drops_with_noise():
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.random((3, 176, 176))).float()
    noisy = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    assert ms_ssim(x, x) == pytest.approx(1.0, abs=1e-6)
    assert 0 < ms_ssim(x, noisy) < 0.99
    assert ms_ssim(x[:, :160], x[:, :160]) is None
