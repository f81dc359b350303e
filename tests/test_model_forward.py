"""The tiny model through the shared step API: shapes, gradients, bits, determinism, rate control."""

import math

import pytest
import torch

from nvc1b.model import VideoCodec
from nvc1b.model.blocks import set_block_checkpointing
from nvc1b.model.quantization import RateEstimator, lambda_for

# adaptors[1] is the feature adaptor of GOP positions 5, 9, ...: a 4-P-frame clip never selects it.
UNUSED_BEFORE_POSITION_5 = {"temporal_context_mining.adaptors.1.weight", "temporal_context_mining.adaptors.1.bias"}


def run_clip(model, frames, q_index=1, checkpoint=False):
    """I-frame then P-frames with cascaded references; returns the step outputs."""
    outputs = [model.intra_step(frames[:, 0], q_index)]
    for t in range(1, frames.shape[1]):
        outputs.append(model.inter_step(frames[:, t], outputs[-1].state, q_index, checkpoint=checkpoint))
    return outputs


def clip_loss(outputs, frames):
    loss = 0.0
    for t, out in enumerate(outputs):
        loss = loss + out.bpp().mean() + 100 * torch.mean((out.x_hat - frames[:, t]) ** 2)
        if out.warped is not None:
            loss = loss + 10 * torch.mean((out.warped - frames[:, t]) ** 2)
    return loss


@pytest.mark.parametrize("size", [(64, 64), (72, 88)])
def test_intra_and_three_p_frames_forward_backward(tiny_model, size):
    frames = torch.rand(2, 4, 3, *size)
    outputs = run_clip(tiny_model, frames, q_index=torch.tensor([0.0, 3.0]))
    for t, out in enumerate(outputs):
        assert out.x_hat.shape == (2, 3, *size)
        assert set(out.bits) == ({"y", "z_y"} if t == 0 else {"m", "z_m", "y", "z_y"})
        for name, bits in out.bits.items():
            assert bits.shape == (2,)
            assert torch.isfinite(bits).all() and (bits > 0).all(), (t, name, bits)
        if t:
            assert out.warped.shape == (2, 3, *size)
            assert out.state.frame.shape[-2:] == {(64, 64): (64, 64), (72, 88): (80, 96)}[size]
    clip_loss(outputs, frames).backward()
    for name, part in {**tiny_model.parts(), "intra": tiny_model.intra}.items():
        grads = [p.grad for p in part.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), f"part {name} got no gradient"
    without = {n for n, p in tiny_model.named_parameters() if p.grad is None}
    assert without == UNUSED_BEFORE_POSITION_5


def test_seven_frame_clip_uses_every_parameter(tiny_model):
    frames = torch.rand(1, 7, 3, 32, 32)
    clip_loss(run_clip(tiny_model, frames), frames).backward()
    assert all(p.grad is not None for p in tiny_model.parameters())


def test_identical_outputs_under_fixed_seed(tiny_config):
    def once():
        torch.manual_seed(123)
        model = VideoCodec(tiny_config)
        frames = torch.rand(1, 3, 3, 48, 64)
        outs = run_clip(model, frames)
        return [o.x_hat for o in outs], [torch.stack(list(o.bits.values())) for o in outs]

    (x1, b1), (x2, b2) = once(), once()
    assert all(torch.equal(a, b) for a, b in zip(x1, x2))
    assert all(torch.equal(a, b) for a, b in zip(b1, b2))


def test_eval_mode_rounds_and_is_deterministic(tiny_model):
    tiny_model.eval()
    frames = torch.rand(1, 2, 3, 32, 48)
    with torch.no_grad():
        a = run_clip(tiny_model, frames)
        b = run_clip(tiny_model, frames)
    assert torch.equal(a[1].x_hat, b[1].x_hat)
    assert torch.equal(a[1].bits["y"], b[1].bits["y"])


def test_q_index_orders_the_rate_after_fitting(tiny_model):
    torch.manual_seed(1)
    frames = torch.rand(4, 2, 3, 64, 64)
    # smooth content so a few steps of fitting reach a meaningful rate-distortion trade-off
    frames = torch.nn.functional.avg_pool2d(frames.flatten(0, 1), 5, 1, 2).view_as(frames)
    opt = torch.optim.Adam(tiny_model.parameters(), lr=1e-3)
    for _ in range(8):
        q = torch.randint(0, 4, (4,)).float()
        lam = lambda_for(q)
        outs = run_clip(tiny_model, frames, q_index=q)
        loss = sum((lam * ((o.x_hat - frames[:, t]) ** 2).mean(dim=(1, 2, 3)) + o.bpp()).mean() for t, o in enumerate(outs))
        opt.zero_grad()
        loss.backward()
        opt.step()
    tiny_model.eval()
    with torch.no_grad():
        rates = []
        for q in range(4):
            outs = run_clip(tiny_model, frames[:1], q_index=q)
            rates.append(sum(o.bpp().item() for o in outs))
    assert rates == sorted(rates) and len(set(rates)) == 4, rates


@pytest.mark.parametrize("mode", ["block", "frame"])
def test_activation_checkpointing_gives_the_same_gradients(tiny_config, mode):
    frames = torch.rand(1, 3, 3, 32, 32)
    grads = []
    for enabled in (False, True):
        torch.manual_seed(5)
        model = VideoCodec(tiny_config)
        if mode == "block":
            assert set_block_checkpointing(model, enabled) > 0
        torch.manual_seed(6)  # same noise draws in both runs
        outs = run_clip(model, frames, checkpoint=(mode == "frame" and enabled))
        clip_loss(outs, frames).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-5, atol=1e-6, msg=name)


def test_noise_and_ste_modes_differ_only_in_reconstruction(tiny_model):
    frames = torch.rand(1, 1, 3, 32, 32)
    torch.manual_seed(9)
    ste = tiny_model.intra_step(frames[:, 0], 2, coder=RateEstimator("ste"))
    torch.manual_seed(9)
    noise = tiny_model.intra_step(frames[:, 0], 2, coder=RateEstimator("noise"))
    assert torch.equal(ste.bits["z_y"], noise.bits["z_y"])  # same noise draw → same hyper-latent rate
    assert not torch.equal(ste.x_hat, noise.x_hat)


def test_lambda_per_anchor_and_fine_levels():
    from nvc1b.model.quantization import fine_level_to_q_index

    assert lambda_for(torch.tensor([0.0, 1.0, 2.0, 3.0])).tolist() == pytest.approx([85, 170, 380, 840])
    anchors = [fine_level_to_q_index(level) for level in (0, 21, 42, 63)]
    assert anchors == pytest.approx([0, 1, 2, 3])
    mid = lambda_for(torch.tensor([fine_level_to_q_index(10)])).item()
    assert 85 < mid < 170 and math.isfinite(mid)


def test_fine_rate_levels_change_the_quantisation_monotonically(tiny_model):
    from nvc1b.model.quantization import fine_level_to_q_index

    q = torch.tensor([fine_level_to_q_index(level) for level in range(0, 64, 9)])
    steps = tiny_model.contextual_codec.rate.encoder_step(q)[:, 0, 0, 0]
    assert torch.all(steps[1:] > steps[:-1])


def test_reconstruction_is_clamped_but_out_of_range_pixels_still_learn():
    from nvc1b.model.quantization import clamp_pixels

    x = torch.tensor([-0.5, 0.3, 1.7], requires_grad=True)
    y = clamp_pixels(x)
    assert y.tolist() == [0.0, pytest.approx(0.3), 1.0]
    ((y - torch.tensor([0.2, 0.3, 0.9])) ** 2).sum().backward()
    assert x.grad[0] < 0 and x.grad[2] > 0  # pulled back into range (a plain clamp gives 0 here)
