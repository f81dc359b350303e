"""Precision boundaries under bf16 autocast: warping and the rate path in fp32, convolutions in bf16.

CUDA's autocast policy is re-enacted on the CPU with nvc1b.perf.emulation.GpuEmulation: CPU autocast runs
grid_sampler in fp32 by itself and would hide a grid built in bf16."""

import pytest
import torch

from nvc1b.model import quantization
from nvc1b.model.likelihood import FactorizedPrior
from nvc1b.model.precision import fp32_region
from nvc1b.model.quantization import RateEstimator
from nvc1b.perf.emulation import DtypeRecorder, GpuEmulation, backward_under, bf16_exact
from nvc1b.train.clip import ClipLoss, ClipSpec, set_trainable

SPEC = dict(parts="All", loss="all_T", frames=2, lambdas=(85.0, 170.0, 380.0, 840.0), frame_weights=(0.5, 1.2, 0.5, 0.9))


@pytest.fixture
def clip():
    gen = torch.Generator().manual_seed(1)
    frames = torch.nn.functional.avg_pool2d(torch.rand(2, 3, 64, 64, generator=gen), 5, 1, 2)
    moved = torch.roll(frames, shifts=(1, 3), dims=(-2, -1))  # a pan the flow has to follow
    return torch.stack([frames, moved], dim=1), torch.tensor([0.0, 3.0])


def test_cuda_autocast_warps_and_rates_in_fp32_and_convolves_in_bf16(tiny_model, clip, monkeypatch):
    frames, q_index = clip
    set_trainable(tiny_model, "All")
    module = ClipLoss(tiny_model, ClipSpec(**SPEC))
    rec = DtypeRecorder()
    quantised, laplace_inputs, prior_inputs = [], [], []
    inside = {"laplace": False, "training_prior": False}

    def within(flag, method, value=lambda coder: True):
        def wrapped(coder, *args, **kwargs):
            inside[flag] = value(coder)
            try:
                return method(coder, *args, **kwargs)
            finally:
                inside[flag] = False
        return wrapped

    def quantise(self, v):
        if inside["laplace"]:  # y/step − μ; (z itself is a convolution's output, bf16 by design)
            quantised.append((v.dtype, bf16_exact(v)))
        return real_quantise(self, v)

    def laplace_bits(residual, scale):
        laplace_inputs.append((residual.dtype, scale.dtype))
        return real_laplace(residual, scale)

    def logits_cdf(self, v):
        if inside["training_prior"]:  # ẑ + noise ± ½ (the frozen I-frame codes round(z) ± ½, bf16-exact integers)
            prior_inputs.append((v.dtype, bf16_exact(v)))
        return real_cdf(self, v)

    real_quantise, real_laplace, real_cdf = RateEstimator._quantise, quantization.laplace_bits, FactorizedPrior.logits_cdf
    monkeypatch.setattr(RateEstimator, "laplace", within("laplace", RateEstimator.laplace))
    monkeypatch.setattr(RateEstimator, "factorized",
                        within("training_prior", RateEstimator.factorized, lambda coder: coder.mode == "ste"))
    monkeypatch.setattr(RateEstimator, "_quantise", quantise)
    monkeypatch.setattr(quantization, "laplace_bits", laplace_bits)
    monkeypatch.setattr(FactorizedPrior, "logits_cdf", logits_cdf)
    gpu = GpuEmulation(torch.bfloat16)
    with rec, gpu:
        loss, _ = module(frames, q_index)
    backward_under(gpu, loss)

    assert len(rec.grids) >= 14  # SpyNet levels, frame, pyramid and offset-diversity warps of the P-frame
    assert all(x == torch.float32 and g == torch.float32 for x, g, _ in rec.grids), rec.grids
    assert not any(exact for *_, exact in rec.grids), [i for i, (*_, e) in enumerate(rec.grids) if e]
    assert quantised and laplace_inputs and prior_inputs and rec.matmuls  # tiny's matmuls: the factorized priors'
    # what is rounded (y − μ, z) was computed in fp32; the Laplace sees fp32 residuals and scales
    assert all(d == torch.float32 and not exact for d, exact in quantised), quantised
    assert all(r == torch.float32 and s == torch.float32 for r, s in laplace_inputs), laplace_inputs
    assert all(d == torch.float32 and not exact for d, exact in prior_inputs)
    assert set(rec.matmuls) == {torch.float32}, rec.matmuls
    # convolutions stay bf16; the only fp32 ones are the two flow heads of the motion decoder
    assert rec.convs.count(torch.bfloat16) > 20 and rec.convs.count(torch.float32) == 2, rec.convs
    assert all(p.grad is not None for p in tiny_model.motion_codec.structure_head.parameters())


def test_fp32_region_turns_off_the_autocast_that_is_on():
    a, b = torch.rand(4, 4), torch.rand(4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (a @ b).dtype == torch.bfloat16
        with fp32_region():
            assert (a @ b).dtype == torch.float32
    with GpuEmulation(torch.bfloat16):
        assert (a @ b).dtype == torch.bfloat16
        with fp32_region():
            assert (a @ b).dtype == torch.float32
        assert (a @ b).dtype == torch.bfloat16
    assert not torch.is_autocast_enabled("cuda")


def test_cpu_bf16_autocast_loss_is_within_two_percent_of_fp32(tiny_model, clip):
    frames, q_index = clip
    frames, q_index = frames[:1, :, :, :32, :32].contiguous(), q_index[1:]  # bf16 is slow on a CPU: a small crop
    losses = {}
    for bf16 in (False, True):
        torch.manual_seed(0)  # the same quantisation noise in both runs
        losses[bf16] = ClipLoss(tiny_model, ClipSpec(**SPEC, bf16=bf16))(frames, q_index)[0].item()
    assert abs(losses[True] - losses[False]) <= 0.02 * abs(losses[False]), losses
