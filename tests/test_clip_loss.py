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


@pytest.mark.parametrize("parts, loss", [("Inter", "meRD"), ("Recon", "recD")])
def test_frozen_half_is_free_and_changes_nothing(tiny_model, parts, loss):
    """The half a stage does not train runs without autograd: never differentiated, never recomputed by per-frame
    checkpointing; loss and gradients equal the plain path that codes every part with autograd."""
    set_trainable(tiny_model, parts)
    frames, q = torch.rand(1, 3, 3, 32, 32), torch.tensor([1.0])
    frozen = ("temporal_context_mining", "contextual_codec", "contextual_entropy") if parts == "Inter" else (
        "motion_estimation", "motion_codec", "motion_entropy")
    calls = []
    phase = ["forward"]
    hooks = [module.register_forward_hook(lambda m, i, o, name=name: calls.append((name, phase[0], torch.is_grad_enabled())))
             for name in frozen for module in getattr(tiny_model, name).modules()]
    results = {}
    for path in (parts, "All"):  # "All" with a frozen set = every part through autograd (the old path)
        tiny_model.zero_grad()
        torch.manual_seed(0)
        out, _ = ClipLoss(tiny_model, spec(parts=path, loss=loss, checkpoint_frames=True))(frames, q)
        phase[0] = "backward"
        out.backward()
        phase[0] = "forward"
        grads = {n: p.grad.clone() for n, p in tiny_model.named_parameters() if p.grad is not None}
        results[path] = (out.detach(), grads, list(calls))
        calls.clear()
    for h in hooks:
        h.remove()
    loss_new, grads_new, calls_new = results[parts]
    loss_old, grads_old, calls_old = results["All"]
    assert torch.allclose(loss_new, loss_old, rtol=1e-5) and grads_new.keys() == grads_old.keys()
    assert all(torch.allclose(grads_new[k], grads_old[k], rtol=1e-4, atol=1e-7) for k in grads_new)
    assert calls_new and all(p == "forward" and not grad for _, p, grad in calls_new)
    assert any(p == "backward" for _, p, _ in calls_old)  # the old path recomputed the frozen half
    assert {name for name, _, _ in calls_new} == set(frozen)  # every frozen part ran, in the forward only


def test_per_frame_steps_reproduce_the_clip_losses(tiny_model):
    set_trainable(tiny_model, "Recon")
    frames, q = torch.rand(2, 3, 3, 32, 32), torch.tensor([0.0, 2.0])
    module = ClipLoss(tiny_model, spec(parts="Recon", loss="recRD"))
    with torch.no_grad():  # training-mode rate estimation draws random numbers: the same seed, the same draws
        torch.manual_seed(1)
        clip_loss, _ = module(frames, q)
        torch.manual_seed(1)
        first, _, state = module(frames, q, frame=1)
        second, metrics, _ = module(frames, q, frame=2, state=state)
    assert torch.allclose(clip_loss, (first + second) / 2) and {"loss", "D", "psnr", "bpp_y"} <= set(metrics)
    with pytest.raises(ValueError, match="needs the reference state of frame 1"):
        module(frames, q, frame=2)
