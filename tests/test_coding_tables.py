"""Integer probability tables: fixed Laplace scale table, factorized-prior tables, and their use by the ANS coder."""

import hashlib
import math
from decimal import Decimal

import constriction
import numpy as np
import pytest
import torch

from nvc1b.coding.tables import SymbolTable
from nvc1b.model.discrete import (
    PRECISION,
    SCALE_LEVELS,
    SCALE_MAX,
    SCALE_MIN,
    FactorizedTable,
    factorized_table,
    laplace_table,
    quantize_pmf,
)
from nvc1b.model.likelihood import FactorizedPrior, laplace_probability

# Streams carry no copy of the Laplace tables: changing them (constants or code) must bump the bitstream version.
LAPLACE_TABLE_SHA256 = "61dc08735e556c45804effdf0514f50496929bd79a303a34e1a2a7d7c336222b"


def _floored_bits(p: torch.Tensor, categories: int) -> np.ndarray:
    """Bits the tables aim at: every category's probability plus 1e-5 (DCVC's floor), renormalised."""
    return -np.log2((p.double().numpy() + 1e-5) / (1 + categories * 1e-5))


def test_laplace_table_is_the_fixed_one():
    table = laplace_table()
    digest = hashlib.sha256(table.boundaries.astype("<f4").tobytes())
    for f in table.frequencies:
        digest.update(f.astype("<i8").tobytes())
    assert digest.hexdigest() == LAPLACE_TABLE_SHA256
    assert len(table.frequencies) == SCALE_LEVELS
    assert table.scales[0] == pytest.approx(SCALE_MIN) and table.scales[-1] == pytest.approx(SCALE_MAX)
    assert np.all(np.diff(table.boundaries) > 0) and np.all(np.diff(table.radii) >= 0)
    for radius, f in zip(table.radii, table.frequencies):
        assert len(f) == 2 * radius + 3 and f.min() >= 1 and f.sum() == 1 << PRECISION
        assert np.abs(f - f[::-1]).max() <= 1  # symmetric around 0 up to the rounding units


def test_laplace_table_follows_the_model_likelihood():
    table = laplace_table()
    for level in (0, 40, 100, SCALE_LEVELS - 1):
        f, radius = table.frequencies[level], int(table.radii[level])
        values = torch.arange(-radius, radius + 1, dtype=torch.float64)
        model_bits = _floored_bits(laplace_probability(values, torch.full_like(values, table.scales[level])), len(f))
        table_bits = PRECISION - np.log2(f[1:-1])
        likely = model_bits < 12  # where 24-bit integers resolve the probability well
        np.testing.assert_allclose(table_bits[likely], model_bits[likely], atol=1e-3)


def test_quantize_pmf_is_exact_and_keeps_every_symbol():
    f = quantize_pmf([0.7, 0.3, 0.0, 1e-12])
    assert f.sum() == 1 << PRECISION and f.min() == 1 and f[0] > f[1]
    assert np.array_equal(quantize_pmf([Decimal("0.5"), Decimal("0.5")]), [1 << 23, 1 << 23])
    with pytest.raises(ValueError):
        quantize_pmf([1.0])
    with pytest.raises(ValueError):
        quantize_pmf([0.5, -0.1, 0.6])


def test_factorized_table_follows_the_prior_and_survives_packing():
    torch.manual_seed(3)
    prior = FactorizedPrior(8)
    table = factorized_table(prior)
    assert len(table.frequencies) == 8
    for c, (low, f) in enumerate(zip(table.lows, table.frequencies)):
        assert f.sum() == 1 << PRECISION and f.min() >= 1
        values = torch.arange(low, low + len(f) - 2, dtype=torch.float32)
        z = torch.zeros(1, 8, 1, len(values))
        z[0, c, 0] = values
        model_bits = _floored_bits(prior(z)[0, c, 0].detach().double(), len(f))
        likely = model_bits < 10
        np.testing.assert_allclose((PRECISION - np.log2(f[1:-1]))[likely], model_bits[likely], atol=2e-3)
    again = FactorizedTable.unpack(table.pack())
    assert np.array_equal(again.lows, table.lows)
    assert all(np.array_equal(a, b) for a, b in zip(again.frequencies, table.frequencies))
    damaged = table.pack()
    damaged["frequencies"][0, 1] += 1
    with pytest.raises(ValueError):
        FactorizedTable.unpack(damaged)


def test_the_ans_coder_uses_the_integer_frequencies_exactly():
    # A rare symbol repeated n times costs n·(24 − log2 f) bits; one unit more or less of f would be visible.
    # (Category 0 is avoided: constriction pushes it onto an empty stack for free, as the decoder knows the count.)
    frequencies = np.asarray([(1 << PRECISION) - 8, 3, 5])
    table = SymbolTable.build(low=0, frequencies=frequencies)
    n = 20000
    symbols = np.ones(n, dtype=np.int32)
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(symbols, table.model)
    expected = n * (PRECISION - math.log2(3))
    assert abs(coder.num_bits() - expected) <= 64
    assert table.bits[1] == pytest.approx(PRECISION - math.log2(3))
    assert np.array_equal(constriction.stream.stack.AnsCoder(coder.get_compressed()).decode(table.model, n), symbols)
