"""The model's functions that must be DCVC-SDD's / DCVC-DC's (issue 14), checked against their definitions."""

from __future__ import annotations

import math

import pytest
import torch

from nvc1b.config.model import Intra
from nvc1b.model.intra import IntraCodec
from nvc1b.model.likelihood import FactorizedPrior, gaussian_bits, laplace_bits
from nvc1b.model.quantization import RateControl, fine_level_to_q_index
from nvc1b.model.temporal_context_mining import OffsetDiversityAlign


def _dcvc_bits(dist, v):
    """DCVC's estimate, written from its definition: −log2(CDF(v+½) − CDF(v−½) + 1e-5), at least 0."""
    p = dist.cdf(v + 0.5) - dist.cdf(v - 0.5)
    return (-torch.log2(p + 1e-5)).clamp_min(0)


@pytest.mark.parametrize("scale", [1e-6, 0.01, 0.05, 0.3, 1.0, 7.0, 60.0])
def test_laplace_and_gaussian_bits_are_dcvcs_estimate(scale):
    v = torch.arange(-40, 41, dtype=torch.float64) / 4
    s = torch.full_like(v, scale)
    lap = _dcvc_bits(torch.distributions.Laplace(0.0, s.clamp_min(1e-5)), v)
    gau = _dcvc_bits(torch.distributions.Normal(0.0, s.clamp_min(1e-5)), v)
    torch.testing.assert_close(laplace_bits(v, s), lap, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(gaussian_bits(v, s), gau, atol=1e-6, rtol=1e-6)


def test_a_certain_zero_costs_nothing_and_a_symbol_at_most_16_6_bits():
    zero = torch.zeros(4)
    assert laplace_bits(zero, torch.tensor([1e-3, 0.01, 0.03, 0.05])).max() < 1e-4  # 0.015 bits with a 0.11 floor
    worst = laplace_bits(torch.tensor([1e4]), torch.tensor([0.01]))
    assert worst.item() == pytest.approx(-math.log2(1e-5), rel=1e-6)


def test_bit_estimator_is_dcvcs_four_layers():
    prior = FactorizedPrior(5)
    assert sum(p.numel() for p in prior.parameters()) == 11 * 5
    with torch.no_grad():
        for p in prior.parameters():
            p.normal_(0, 0.7)
    z = torch.randn(2, 5, 3, 4) * 3
    x = z.round()

    def cdf(v):  # DCVC's Bitparm chain, from its definition
        for i in range(4):
            h, b = prior.matrices[i].view(1, -1, 1, 1), prior.biases[i].view(1, -1, 1, 1)
            v = v * torch.nn.functional.softplus(h) + b
            if i < 3:
                v = v + torch.tanh(v) * torch.tanh(prior.factors[i].view(1, -1, 1, 1))
        return torch.sigmoid(v)

    expected = (-torch.log2(cdf(x + 0.5) - cdf(x - 0.5) + 1e-5)).clamp_min(0)
    torch.testing.assert_close(prior.bits(x), expected, atol=1e-5, rtol=1e-5)


def test_rate_levels_are_anchors_or_the_log_line_from_anchor_0_to_3():
    rate = RateControl(3, 3)
    with torch.no_grad():
        rate.enc_scale.copy_(torch.tensor([2.0, 1.1, 1.05, 0.5]))
        rate.enc_base.fill_(1.0)
    steps = rate.encoder_step(torch.tensor([0.0, 1.0, 2.0, 3.0]))[:, 0, 0, 0]
    torch.testing.assert_close(steps, torch.tensor([2.0, 1.1, 1.05, 0.5]))
    fine = torch.exp(torch.linspace(math.log(2.0), math.log(0.5), 64))  # DCVC's 64 fine levels
    for level in (1, 10, 33, 50, 62):
        q = torch.tensor([fine_level_to_q_index(level)])
        assert rate.encoder_step(q)[0, 0, 0, 0].item() == pytest.approx(fine[level].item(), rel=1e-5)


def test_offset_diversity_fuses_one_copy_of_neighbouring_groups_and_keeps_samples_apart():
    torch.manual_seed(0)
    align = OffsetDiversityAlign(ch=8, hidden=8, groups=4, offsets=2).eval()
    with torch.no_grad():
        align.offset_net[-1].weight.zero_()
        align.offset_net[-1].bias.zero_()  # offsets = flow (zero), masks ½
    feature = torch.randn(2, 8, 6, 6)
    aux = torch.randn(2, 8, 6, 6), torch.randn(2, 3, 6, 6), torch.zeros(2, 2, 6, 6)
    w = align.fuse.weight.detach()[:, :, 0, 0]  # (8 out, 4 in per group)
    out = align(feature, *aux).detach()
    # the k·C channels are (copy, channel): fusion group j reads channels 4j … 4j+3 of the stacked copies
    stacked = torch.cat([feature, feature], dim=1) * 0.5
    for j in range(4):
        mixed = torch.einsum("oi,bihw->bohw", w[2 * j : 2 * j + 2], stacked[:, 4 * j : 4 * j + 4])
        torch.testing.assert_close(out[:, 2 * j : 2 * j + 2], mixed + align.fuse.bias.detach()[2 * j : 2 * j + 2, None, None])
    alone = torch.cat([align(feature[i : i + 1], *(a[i : i + 1] for a in aux)) for i in range(2)]).detach()
    torch.testing.assert_close(out, alone)  # a batch codes each sample as if alone


def test_intra_coder_has_dcvc_dcs_parameter_count():
    with torch.device("meta"):
        intra = IntraCodec(Intra())
    assert sum(p.numel() for p in intra.parameters()) == 30_998_187
