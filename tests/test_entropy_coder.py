"""The bitstream coder on synthetic latents: exact round trips (escapes, out-of-table scales), agreement with the
evaluation coder, size against information content, and robustness of the decoder to arbitrary payloads."""

import numpy as np
import pytest
import torch

from nvc1b.coding.entropy import MAX_SYMBOL, SymbolDecoder, SymbolEncoder
from nvc1b.coding.tables import CodingTables
from nvc1b.errors import BitstreamError
from nvc1b.model.export import coding_tables
from nvc1b.model.likelihood import laplace_bits
from nvc1b.model.quadtree import quadtree_masks
from nvc1b.model.quantization import RateEstimator


@pytest.fixture
def tables(tiny_model):
    return CodingTables(tiny_model, coding_tables(tiny_model), torch.device("cpu"))


def synthetic_latent(c=32, h=6, w=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(1, c, h, w, generator=g) * 4
    scales = torch.exp(torch.empty(1, c, h, w).uniform_(-3.5, 5.0, generator=g))  # below and above the table
    noise = torch.distributions.Laplace(0.0, 1.0).sample((1, c, h, w))
    y = means + noise * scales
    y.view(-1)[:5] = torch.tensor([5e5, -5e5, 1e3, -(MAX_SYMBOL - 1.0), 0.4])  # escapes of every size
    return y, means, scales


def code_laplace(tables, y, means, scales):
    masks = quadtree_masks(y.shape[1], *y.shape[-2:])
    encoder = SymbolEncoder(tables)
    encoded = [encoder.laplace("y", y, means, scales, m) for m in masks]
    payload = encoder.finish()
    decoder = SymbolDecoder(tables, payload)
    decoded = [decoder.laplace("y", None, means, scales, m) for m in masks]
    decoder.finish()
    return encoder, decoder, encoded, decoded, payload, masks


def test_laplace_round_trip_is_exact_and_equals_the_evaluation_coder(tables):
    y, means, scales = synthetic_latent()
    encoder, decoder, encoded, decoded, payload, masks = code_laplace(tables, y, means, scales)
    reference = RateEstimator("round")
    for (enc, enc_bits), (dec, dec_bits), mask in zip(encoded, decoded, masks):
        assert torch.equal(enc, dec) and torch.equal(enc_bits, dec_bits)
        assert torch.equal(enc, reference.laplace("y", y, means, scales, mask)[0])
    assert encoder.checksum == decoder.checksum
    assert abs(8 * len(payload) - encoder.bits["y"]) <= 64  # the ANS coder's final state


def test_laplace_bits_follow_the_model_estimate_inside_the_table(tables):
    y, means, scales = synthetic_latent(seed=1)
    scales = scales.clamp(0.2, 50.0)
    y = means + (y - means).clamp(-200, 200)
    encoder, *_ = code_laplace(tables, y, means, scales)
    estimate = laplace_bits(torch.round(y - means), scales).sum().item()
    assert encoder.bits["y"] == pytest.approx(estimate, rel=0.01)


def test_factorized_round_trip_with_escapes(tiny_model, tables):
    prior = tiny_model.intra.hyperprior.z_prior
    g = torch.Generator().manual_seed(2)
    z = torch.randn(1, prior.channels, 3, 4, generator=g) * 20
    z.view(-1)[:3] = torch.tensor([4e6, -3e4, 1e5])
    encoder = SymbolEncoder(tables)
    z_hat, bits = encoder.factorized("z_y", z, prior, tuple(z.shape))
    decoder = SymbolDecoder(tables, encoder.finish())
    z_dec, dec_bits = decoder.factorized("z_y", None, prior, tuple(z.shape))
    decoder.finish()
    assert torch.equal(z_hat, torch.round(z)) and torch.equal(z_dec, z_hat) and torch.equal(bits, dec_bits)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 2.0 * MAX_SYMBOL])
def test_encoder_refuses_unrepresentable_latents(tables, bad):
    y, means, scales = synthetic_latent()
    y.view(-1)[0] = bad
    with pytest.raises(BitstreamError, match="latent 'y'"):
        SymbolEncoder(tables, where="frame 3").laplace("y", y, means, scales, torch.ones(1, *y.shape[1:]))


def test_decoder_survives_arbitrary_payloads(tiny_model, tables):
    y, means, scales = synthetic_latent()
    masks = quadtree_masks(y.shape[1], *y.shape[-2:])
    prior = tiny_model.intra.hyperprior.z_prior
    rng = np.random.default_rng(0)
    outcomes = set()
    for trial in range(60):
        words = rng.integers(0, 2**32, size=int(rng.integers(0, 40)), dtype=np.uint64).astype("<u4")
        if trial % 3 == 0 and words.size:
            words[-1] = 0  # not valid ANS data at all
        try:
            decoder = SymbolDecoder(tables, words.tobytes(), where="frame 0")
            decoder.factorized("z_y", None, prior, (1, prior.channels, 2, 3))
            for m in masks:
                decoder.laplace("y", None, means, scales, m)
            decoder.finish()
            outcomes.add("decoded")
        except BitstreamError as exc:
            assert str(exc).startswith("frame 0")
            outcomes.add("error")
    assert "error" in outcomes
