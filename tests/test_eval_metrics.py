"""The evaluator's metrics and colour handling against direct numpy computation: PSNR, (6Y+U+V)/8, the BT.709
conversions the two protocols apply to inputs and reconstructions, MS-SSIM's limits."""

import math

import numpy as np
import pytest
import torch

from nvc1b.eval.metrics import Reference, measure, ms_ssim, psnr, yuv_psnr
from nvc1b.eval.protocol import outputs_from_rgb, outputs_from_yuv
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


def test_rgb_protocol_outputs_match_numpy():
    """rgb: the decoder writes 8-bit RGB; YUV PSNR compares the 4:2:0 conversion of that 8-bit frame."""
    rng = np.random.default_rng(1)
    x_hat = rng.random((3, 8, 12)).astype(np.float32)
    rgb8, (y, u, v) = outputs_from_rgb(torch.from_numpy(x_hat), "rgb")
    expected_rgb8 = numpy_to_u8(x_hat)
    assert np.array_equal(rgb8, expected_rgb8)
    ny, ncb, ncr = numpy_yuv444(expected_rgb8.astype(np.float64) / 255)
    pool = lambda c: c.reshape(4, 2, 6, 2).mean(axis=(1, 3))
    assert np.abs(y.astype(int) - numpy_to_u8(ny).astype(int)).max() <= 1  # float32 vs float64 at .5 boundaries
    assert np.abs(u.astype(int) - numpy_to_u8(pool(ncb)).astype(int)).max() <= 1
    assert np.abs(v.astype(int) - numpy_to_u8(pool(ncr)).astype(int)).max() <= 1
    assert np.mean(y == numpy_to_u8(ny)) > 0.99


def test_yuv420_protocol_converts_the_float_reconstruction():
    """yuv420: the reconstruction goes to 4:2:0 from the float frame, not from its 8-bit RGB rounding."""
    rng = np.random.default_rng(2)
    x_hat = rng.random((3, 8, 12))
    _, (y, u, _v) = outputs_from_rgb(torch.from_numpy(x_hat), "yuv420")
    ny, ncb, _ = numpy_yuv444(x_hat)
    assert np.array_equal(y, numpy_to_u8(ny))
    assert np.array_equal(u, numpy_to_u8(ncb.reshape(4, 2, 6, 2).mean(axis=(1, 3))))


def test_yuv_output_to_rgb_matches_numpy_for_flat_chroma():
    """A YUV coder's planes → RGB for RGB PSNR: with flat 2x2 chroma the bilinear upsampling is exact."""
    rng = np.random.default_rng(3)
    y = rng.integers(16, 240, (4, 6), dtype=np.uint8)
    u = np.full((2, 3), 100, dtype=np.uint8)
    v = np.full((2, 3), 170, dtype=np.uint8)
    rgb8, planes = outputs_from_yuv(y, u, v)
    yf, cb, cr = y / 255.0, 100 / 255.0 - 0.5, 170 / 255.0 - 0.5
    r = yf + 2 * (1 - KR) * cr
    b = yf + 2 * (1 - KB) * cb
    g = (yf - KR * r - KB * b) / (1 - KR - KB)
    assert np.abs(rgb8.astype(int) - numpy_to_u8(np.stack([r, g, b])).astype(int)).max() <= 1
    assert planes[0] is y


def test_measure_combines_planes_and_caps_lossless_frames():
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (3, 8, 8), dtype=np.uint8)
    y, u, v = (rng.integers(0, 256, s, dtype=np.uint8) for s in ((8, 8), (4, 4), (4, 4)))
    ref = Reference(rgb, y, u, v)
    y_hat = y.copy()
    y_hat[0, 0] ^= 1
    quality = measure(ref, rgb, (y_hat, u, v))
    assert quality.psnr_rgb == math.inf and quality.psnr_u == math.inf
    assert quality.psnr_y == pytest.approx(10 * np.log10(255**2 * 64))
    assert quality.ms_ssim is None  # 8x8 is too small for five scales
    row = frame_row(0, "I", 100, 64, quality, 0.1, 0.2)
    assert row.psnr_rgb == PSNR_CAP and row.psnr_u == PSNR_CAP
    assert row.psnr_yuv == pytest.approx((6 * quality.psnr_y + 2 * PSNR_CAP) / 8)
    assert row.bpp == pytest.approx(8 * 100 / 64)


def test_ms_ssim_is_one_for_equal_frames_and_drops_with_noise():
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.random((3, 176, 176))).float()
    noisy = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    assert ms_ssim(x, x) == pytest.approx(1.0, abs=1e-6)
    assert 0 < ms_ssim(x, noisy) < 0.99
    assert ms_ssim(x[:, :160], x[:, :160]) is None
