"""Integer tables of the discretised Gaussian (nvc1b.coding.gaussian_tables): fixed on every machine, faithful to
the float Gaussian within the 24-bit quantisation bound, and exact through the ANS coder."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from nvc1b.coding.entropy import SymbolDecoder, SymbolEncoder
from nvc1b.coding.gaussian_tables import (
    GAUSSIAN_SCALE_LEVELS,
    GAUSSIAN_SCALE_MAX,
    GAUSSIAN_SCALE_MIN,
    GaussianScaleCoder,
    build_gaussian_table,
    gaussian_table,
)
from nvc1b.model.discrete import PRECISION, PROBABILITY_FLOOR, TAIL_BITS

FLOOR = float(PROBABILITY_FLOOR)

# Streams carry no copy of the tables: changing them (constants or code) must bump the bitstream version.
GAUSSIAN_TABLE_SHA256 = "7e89c726de65e6f37314f4f6eab5a3cefc91459c23f09acdecb5d1118062a9be"
REFERENCE = Path(__file__).parent / "fixtures" / "dcvc" / "manifest.json"


def _float_pmf(values: np.ndarray, scale: float) -> np.ndarray:
    """P(round(X) = v) of X ~ N(0, scale²) in float64, each side computed in its accurate tail."""
    a = torch.from_numpy(np.abs(values).astype(np.float64))
    upper = torch.special.ndtr(-(a - 0.5) / scale) - torch.special.ndtr(-(a + 0.5) / scale)
    centre = 2 * torch.special.ndtr(torch.tensor(0.5 / scale, dtype=torch.float64)) - 1
    return torch.where(a == 0, centre, upper).numpy()


def test_table_is_fixed_and_rebuilds_byte_identical():
    first, second = gaussian_table(), build_gaussian_table()  # the process's cached table and a fresh build
    assert first is not second and first.digest() == second.digest() == GAUSSIAN_TABLE_SHA256
    assert len(first.frequencies) == GAUSSIAN_SCALE_LEVELS
    # DCVC-DC's intra coder range (GaussianEncoder, distribution 'gaussian', as the fixtures recorded it) lies within
    # the table, which starts lower (0.01) so that it follows the estimate's 1e-5 scale clamp
    ref = json.loads(REFERENCE.read_text())["constants"]["i_coder"]
    assert ref["distribution"] == "gaussian"
    assert first.scales[0] < ref["scale_min"] and first.scales[-1] == pytest.approx(ref["scale_max"], rel=1e-6)
    assert (GAUSSIAN_SCALE_MIN, GAUSSIAN_SCALE_MAX) == (0.01, 64.0)
    assert np.all(np.diff(first.boundaries) > 0) and np.all(np.diff(first.radii) >= 0)
    for radius, f in zip(first.radii, first.frequencies):
        assert len(f) == 2 * radius + 3 and f.min() >= 1 and f.sum() == 1 << PRECISION
        assert np.abs(f - f[::-1]).max() <= 1  # symmetric around 0 up to the rounding units


def test_table_follows_the_float_gaussian_within_the_precision_bound():
    table = gaussian_table()
    for level in (0, 1, 40, 100, GAUSSIAN_SCALE_LEVELS - 1):
        f, radius, scale = table.frequencies[level], int(table.radii[level]), table.scales[level]
        values = np.arange(-radius, radius + 1)
        n = len(f)
        p = (_float_pmf(values, scale) + FLOOR) / (1 + n * FLOOR)  # every category + 1e-5, renormalised
        # quantize_pmf: f_i = 1 + floor(p_i·(2^P − n)) (+1), so |f_i/2^P − p_i| ≤ (n + 2)/2^P
        assert np.abs(f[1:-1] / 2.0**PRECISION - p).max() <= (len(f) + 2) / 2.0**PRECISION
        table_bits, model_bits = PRECISION - np.log2(f[1:-1]), -np.log2(p)
        likely = model_bits < 12  # where 24-bit integers resolve the probability well
        np.testing.assert_allclose(table_bits[likely], model_bits[likely], atol=1e-3)
        # each tail is at most 2^-TAIL_BITS, and the radius is the smallest that makes it so
        tail = float(torch.special.ndtr(torch.tensor(-(radius + 0.5) / scale, dtype=torch.float64)))
        assert tail <= 2.0**-TAIL_BITS * (1 + 1e-9)
        if radius > 1:
            wider = float(torch.special.ndtr(torch.tensor(-(radius - 0.5) / scale, dtype=torch.float64)))
            assert wider > 2.0**-TAIL_BITS
        assert abs(f[0] / 2.0**PRECISION - (tail + FLOOR) / (1 + n * FLOOR)) <= (len(f) + 2) / 2.0**PRECISION


def test_levels_pick_the_nearest_scale_in_log():
    coder = GaussianScaleCoder()
    table = coder.table
    exact = torch.tensor(table.scales, dtype=torch.float32)
    assert torch.equal(coder.levels(exact), torch.arange(GAUSSIAN_SCALE_LEVELS))
    outside = torch.tensor([0.0, 1e-5, GAUSSIAN_SCALE_MIN / 2, 1e3, float("inf")])
    assert coder.levels(outside).tolist() == [0, 0, 0, GAUSSIAN_SCALE_LEVELS - 1, GAUSSIAN_SCALE_LEVELS - 1]


def test_exact_round_trip_through_the_ans_coder():
    gen = torch.Generator().manual_seed(5)
    coder = GaussianScaleCoder()
    tables = SimpleNamespace(levels=lambda s, family: coder.levels(s), symbols=lambda family: coder.symbols,
                             device=torch.device("cpu"))
    shape = (1, 16, 12, 10)
    scales = torch.exp(torch.empty(shape).uniform_(np.log(0.02), np.log(200.0), generator=gen))
    means = torch.randn(shape, generator=gen) * 3
    y = means + torch.randn(shape, generator=gen) * scales
    y.view(-1)[:7] += torch.tensor([300.0, -300.0, 5e3, -5e4, 40.0, -40.0, 1e5])  # escapes on both sides
    mask = torch.ones(shape)
    mask[:, :, ::2, 1::2] = 0  # one quadtree step codes a subset of the positions
    encoder = SymbolEncoder(tables)
    recon, bits = encoder.gaussian("y", y, means, scales, mask)
    payload = encoder.finish()
    decoder = SymbolDecoder(tables, payload)
    decoded, decoded_bits = decoder.gaussian("y", None, means, scales, mask)
    decoder.finish()
    assert torch.equal(decoded, recon)
    assert torch.equal(recon, (torch.round(y - means) + means) * mask)
    assert float(decoded_bits) == float(bits) and decoder.checksum == encoder.checksum
    # the payload costs the tables' information content (plus under one 32-bit word of ANS overhead per frame)
    assert float(bits) - 32 <= 8 * len(payload) <= float(bits) + 64
