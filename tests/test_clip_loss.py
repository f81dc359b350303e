"""The per-clip training module: trainable sets, loss kinds, bf16 autocast keeping likelihoods in fp32."""

import pytest
import torch

from nvc1b.train.clip import PART_SETS, ClipLoss, ClipSpec, set_trainable
from nvc1b.train.losses import FrameTerms, frame_loss


def spec(**kw):
    base = dict(parts="All", loss="all_T", frames=3, lambdas=(85.0, 170.0, 380.0, 840.0), frame_weights=(0.5, 1.2, 0.5, 0.9))
    return ClipSpec(**{**base, **kw})


@pytest.mark.parametrize("parts, loss, frames", [
    ("Intra", "intra", 1), ("Inter", "meD", 2), ("Inter", "meRD", 3), ("Recon", "recD", 2), ("Recon", "recRD", 3),
    ("All", "all", 3), ("All", "all_T", 3),
])
def test_every_loss_trains_exactly_its_parts(tiny_model, parts, loss, frames):
    set_trainable(tiny_model, parts)
    module = ClipLoss(tiny_model, spec(parts=parts, loss=loss, frames=frames))
    out, metrics = module(torch.rand(2, frames, 3, 32, 32), torch.tensor([0.0, 3.0]))
    out.backward()
    assert torch.isfinite(out) and {"loss", "D", "psnr"} <= set(metrics)
    trained = {n.split(".")[0] for n, p in tiny_model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert trained == set(PART_SETS[parts]), trained


def test_cascaded_loss_sends_gradient_through_the_references(tiny_model):
    set_trainable(tiny_model, "All")
    frames = torch.rand(1, 3, 3, 32, 32)
    grads = {}
    for loss in ("all", "all_T"):
        tiny_model.zero_grad()
        torch.manual_seed(0)
        ClipLoss(tiny_model, spec(loss=loss))(frames, torch.tensor([1.0]))[0].backward()
        grads[loss] = tiny_model.contextual_codec.recon_out.weight.grad.clone()
    # same forward values, but all_T also differentiates frame 2's loss through frame 1's reconstruction
    assert not torch.allclose(grads["all"], grads["all_T"])


def test_loss_formulas():
    t = FrameTerms(D=torch.tensor([0.01]), D_m=torch.tensor([0.02]), R_m=torch.tensor([0.1]), R_y=torch.tensor([0.3]))
    lam = torch.tensor([100.0])
    assert frame_loss("meD", t, lam, 0.5).item() == pytest.approx(0.5 * 100 * 0.02)
    assert frame_loss("meRD", t, lam, 0.5).item() == pytest.approx(1.0 + 0.1)
    assert frame_loss("recD", t, lam, 1.2).item() == pytest.approx(1.2)
    assert frame_loss("recRD", t, lam, 1.2).item() == pytest.approx(1.2 + 0.3)
    assert frame_loss("all_T", t, lam, 0.9).item() == pytest.approx(0.9 + 0.1 + 0.3)
    assert frame_loss("intra", t, lam, 0.9).item() == pytest.approx(1.0 + 0.3)


def test_bf16_autocast_keeps_rates_in_fp32(tiny_model):
    set_trainable(tiny_model, "All")
    module = ClipLoss(tiny_model, spec(frames=2, bf16=True))
    loss, metrics = module(torch.rand(1, 2, 3, 32, 32), torch.tensor([2.0]))
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert metrics["bpp_y"].dtype == torch.float32 and 0 < metrics["bpp_y"] < 50
