"""The memory model: model states are counts × bytes per ZeRO stage; activations, measured on the meta device,
grow linearly with the frames of the cascade, the crop area and the micro-batch, and predict longer cascades
than the one measured; the autocast emulation keeps CUDA autocast's dtypes."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from nvc1b.cli import main
from nvc1b.config.model import load_preset
from nvc1b.model.counting import count_parameters
from nvc1b.perf.emulation import GpuEmulation
from nvc1b.perf.memory import (
    USABLE_FRACTION,
    DeepSpeedBuffers,
    activation_profile,
    estimate_memory,
    largest_micro_batch,
    longest_cascade,
    measure_clip,
    model_state_bytes,
)

ROOT = Path(__file__).resolve().parents[1]
CROP = 32
BATCHES = (1, 2)  # bf16 profiles are measured at two micro-batches, shared by the tests and `bench memory`


@pytest.fixture(scope="module")
def tiny():
    return load_preset("tiny")


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_model_states_are_counts_times_bytes_per_zero_stage(stage):
    p, t, n = 1_000_003, 800_001, 4  # parameters, trainable ones, ranks
    buffers = DeepSpeedBuffers(reduce_bucket_elements=1000, stage3_max_live_parameters=500)
    s = model_state_bytes(p, t, stage, n, buffers)
    share = -(-t // n)
    assert s.weights == 4 * (-(-p // n) if stage == 3 else p)
    assert s.gradients == 4 * (share if stage >= 2 else t)
    assert s.master == (4 * share if stage else 0)
    assert s.optimizer == 8 * (share if stage else t)
    assert s.buffers == {0: 0, 1: 4000, 2: 4000, 3: 4 * (500 + 1000)}[stage]
    assert s.total == s.weights + s.gradients + s.master + s.optimizer + s.buffers


def test_estimate_adds_states_and_activations(tiny):
    profile = activation_profile(tiny, CROP, "fp32", False)
    count = count_parameters(tiny)
    e = estimate_memory(count, profile, 4, 2, 2, 8)
    assert e.states == model_state_bytes(count.total + count.intra, count.total, 2, 8)
    assert e.activations == profile.clip_bytes(4, 2)
    assert e.total == e.states.total + e.activations
    # exactly 6 frames fit (a relative 1e-9 over, so the float round trip of the budget cannot drop the sixth)
    budget = estimate_memory(count, profile, 6, 1, 2, 8).total / USABLE_FRACTION / 2**30 * (1 + 1e-9)
    assert longest_cascade(count, profile, 1, 2, 8, budget) == 6
    assert largest_micro_batch(count, profile, 6, 2, 8, budget) == 1


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_activations_grow_linearly_with_frames(tiny, precision):
    profile = activation_profile(tiny, CROP, precision, False, BATCHES if precision == "bf16" else (1,))
    assert profile.frame.at(1) > 0 and profile.first_frame.at(1) > 0
    measured = measure_clip(tiny, 6, CROP, precision, False).peak  # longer than the 4-frame clip measured
    assert profile.activation_bytes(6) == pytest.approx(measured, rel=0.02)
    if precision == "bf16":  # a single P-frame never casts the weights only later frames use: over-estimated
        measured = measure_clip(tiny, 2, CROP, precision, False).peak
        assert measured <= profile.activation_bytes(2) <= 1.1 * measured
    steps = [profile.activation_bytes(t + 1) - profile.activation_bytes(t) for t in range(3, 9)]
    assert len(set(steps)) == 1 and steps[0] == profile.frame.at(1)


def test_bf16_keeps_about_half_the_bytes_and_caches_weight_casts(tiny):
    fp32 = activation_profile(tiny, CROP, "fp32", False)
    bf16 = activation_profile(tiny, CROP, "bf16", False, BATCHES)
    assert 0.4 < bf16.frame.at(1) / fp32.frame.at(1) < 0.8
    assert fp32.weight_copies == 0
    # every trainable weight used by a convolution or linear layer is cast once per forward
    assert 0.8 * 2 * count_parameters(tiny).total < bf16.weight_copies <= 2 * count_parameters(tiny).total


def test_activations_grow_with_crop_area(tiny):
    small = activation_profile(tiny, CROP, "fp32", False)
    large = activation_profile(tiny, 2 * CROP, "fp32", False)
    assert large.frame.at(1) / small.frame.at(1) == pytest.approx(4.0, rel=0.05)
    assert large.activation_bytes(6) / small.activation_bytes(6) == pytest.approx(4.0, rel=0.05)


def test_per_frame_checkpointing_keeps_only_the_frame_boundaries(tiny):
    plain = activation_profile(tiny, CROP, "bf16", False, BATCHES)
    ckpt = activation_profile(tiny, CROP, "bf16", True, BATCHES)
    assert 0 < ckpt.frame.at(1) < 0.05 * plain.frame.at(1)
    assert ckpt.transient.at(1) > plain.frame.at(1)  # one frame recomputed in backward
    assert ckpt.activation_bytes(6) == pytest.approx(measure_clip(tiny, 6, CROP, "bf16", True).peak, rel=0.02)
    # a 2-frame clip is measured as such (its one recomputed frame is a first P-frame, smaller than later ones)
    assert ckpt.two_frames is not None and ckpt.activation_bytes(2) < ckpt.activation_bytes(3)
    assert ckpt.activation_bytes(32) < plain.activation_bytes(4)


def test_micro_batch_dependence_is_fitted_through_two_batches(tiny):
    profile = activation_profile(tiny, CROP, "bf16", False, BATCHES)
    assert profile.micro_batches == (1, 2)
    measured = measure_clip(tiny, 5, CROP, "bf16", False, micro_batch=3).peak
    assert profile.activation_bytes(5, 3) == pytest.approx(measured, rel=0.01)


def test_profiles_are_kept_on_disk(tiny):
    from nvc1b.perf import memory
    from nvc1b.perf.cache import cache_dir

    profile = activation_profile(tiny, CROP, "fp32", False)
    assert any(cache_dir().glob("*.json"))
    memory._PROFILES.clear()  # as in a new process
    assert activation_profile(tiny, CROP, "fp32", False) == profile


def test_emulated_autocast_follows_the_cuda_policy():
    conv = torch.nn.Conv2d(4, 8, 3, padding=1)
    x = torch.rand(1, 4, 8, 8)
    with GpuEmulation() as autocast:
        y = conv(x)
        z = conv(x * 2)
        norm = F.layer_norm(y, (8,))
        soft = torch.softmax(y, dim=1)
        up = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        warped = F.grid_sample(y, torch.zeros(1, 8, 8, 2), align_corners=True)
    assert y.dtype == z.dtype == torch.bfloat16
    assert norm.dtype == soft.dtype == up.dtype == warped.dtype == torch.float32
    assert autocast.cached_bytes == 2 * (conv.weight.numel() + conv.bias.numel())  # cast once, reused
    assert conv(x).dtype == torch.float32  # nothing changes outside


def _saved_shapes(attention) -> list[tuple]:
    q, k, v = (torch.empty(6, 2, 64, 32, device="meta", requires_grad=True) for _ in range(3))
    mask = torch.zeros(6, 2, 64, 64, device="meta")
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(tuple(t.shape)) or t, lambda t: t):
        assert attention(q, k, v, mask).shape == (6, 2, 64, 32)
    return saved


def test_attention_keeps_what_the_fused_kernel_keeps():
    def fused(q, k, v, mask):
        with GpuEmulation(dtype=None):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    def math(q, k, v, mask):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    kept = _saved_shapes(fused)  # q, k, v, output, mask, log-sum-exp (and the kernel's two RNG scalars)
    assert sorted(s for s in kept if s) == sorted([(6, 2, 64, 32)] * 4 + [(6, 2, 64, 64), (6, 2, 64)])
    assert any(s[-2:] == (64, 64) and s != (6, 2, 64, 64) for s in _saved_shapes(math))  # probabilities kept


def test_bench_memory_command(tmp_path, capsys):
    profile = yaml.safe_load((ROOT / "cluster" / "a800x4.yaml").read_text())
    profile.update(gpu_memory_gb=3.0, nodes=1, gpus_per_node=2, micro_batch=1)  # DeepSpeed buckets take 1.9
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(profile))
    args = ["bench", "memory", "--preset", "tiny", "--cluster", str(tmp_path / "small.yaml"), "--crop", "32",
            "--frames", "2", "4", "8"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "model states per GPU" in out and "longest cascade at micro-batch 1" in out
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["frames"] for r in data["rows"]] == [2, 4, 8]
    rows = {r["frames"]: r for r in data["rows"]}
    assert rows[8]["no_checkpoint"]["activations"] > rows[4]["no_checkpoint"]["activations"]
    assert data["longest_cascade"]["checkpoint"] >= data["longest_cascade"]["no_checkpoint"] >= 8


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU path of --check; on a GPU it measures bf16 (gpu_check.sh)")
def test_predictions_match_real_clips_run_on_this_machine(capsys):
    """`--check` runs each clip for real (here: the CPU in fp32, live tensors counted) next to the prediction read
    off the meta device's 4-frame clips, for cascades longer than the one measured."""
    args = ["bench", "memory", "--preset", "tiny", "--cluster", str(ROOT / "cluster" / "a800x4.yaml"), "--crop", "64",
            "--micro-batch", "1", "--frames", "2", "6", "--check"]
    assert main(args) != 0  # bf16 (the default) cannot be checked on a CPU
    assert "fp32 only" in capsys.readouterr().err
    assert main([*args, "--precision", "fp32", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["check"]["rows"]
    assert [(r["frames"], r["checkpoint"]) for r in rows] == [(2, False), (6, False), (2, True), (6, True)]
    for r in rows:
        assert r["measured"] > 0 and r["ratio"] == pytest.approx(1.0, abs=0.02), r
    assert main([*args, "--precision", "fp32"]) == 0
    assert "predicted / measured / ratio" in capsys.readouterr().out
