"""The ``init`` schedule key: zero-residual starts every residual block as its shortcut; pass-through also starts
the intra coder as a block-mean colour codec and every P-frame as a copy of its reference."""

import itertools
import typing
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nvc1b.config.model import load_preset
from nvc1b.errors import ConfigError
from nvc1b.model.codec import VideoCodec
from nvc1b.model.init import initialise
from nvc1b.model.layers import ConvFFN, DepthConv, ResBlock, StridedResBlock, UpsampleResBlock
from nvc1b.model.pass_through import GAIN
from nvc1b.train.schedule import load_schedule
from nvc1b.train.stage import stage_start_model

DEMO = Path(__file__).parents[1] / "stages" / "demo.yaml"


def _codec(init: str) -> VideoCodec:
    torch.manual_seed(0)
    codec = VideoCodec(load_preset("tiny"))
    initialise(codec, init)
    return codec


def test_zero_residual_blocks_compute_their_shortcuts():
    codec = _codec("zero-residual")
    blocks = [m for m in codec.modules() if isinstance(m, ResBlock | DepthConv | ConvFFN | StridedResBlock | UpsampleResBlock)]
    assert len(blocks) > 50  # every part of the codec has them
    with torch.no_grad():
        for block in blocks:
            if isinstance(block, ResBlock):
                x = torch.randn(1, block.conv1.in_channels, 8, 8)
                torch.testing.assert_close(block(x), x)
            elif isinstance(block, ConvFFN):
                x = torch.randn(1, block.fc1.in_channels, 8, 8)
                torch.testing.assert_close(block(x), x)
            elif isinstance(block, DepthConv):
                x = torch.randn(1, block.pw1.in_channels, 8, 8)
                torch.testing.assert_close(block(x), block.shortcut(x))
            elif isinstance(block, StridedResBlock):
                x = torch.randn(1, block.conv1.in_channels, 8, 8)
                torch.testing.assert_close(block(x), block.shortcut(x[..., ::2, ::2]))
            else:
                x = torch.randn(1, block.up[0].in_channels, 8, 8)
                torch.testing.assert_close(block(x), block.shortcut(x))


def test_default_init_is_pytorchs_and_zero_residual_changes_only_branch_ends():
    default, zero = _codec("default"), _codec("zero-residual")
    torch.manual_seed(0)  # the same seed without initialise: identical tensors
    plain = VideoCodec(load_preset("tiny"))
    assert all(torch.equal(a, b) for a, b in zip(default.state_dict().values(), plain.state_dict().values()))
    changed = {k for k, v in zero.state_dict().items() if not torch.equal(v, default.state_dict()[k])}
    assert changed and all(zero.state_dict()[k].abs().sum() == 0 for k in changed)
    assert all(k.rsplit(".", 2)[-2] in {"conv2", "conv", "pw2", "fc2"} for k in changed)


def test_the_zero_residual_codec_trains_its_first_step_finitely():
    codec = _codec("zero-residual")
    x = torch.rand(1, 3, 64, 64)
    out = codec.intra_step(x, torch.tensor([3.0]))
    loss = F.mse_loss(out.x_hat, x) * 100 + out.bpp().mean()
    loss.backward()
    grads = [p.grad for p in codec.intra.parameters() if p.grad is not None]
    assert torch.isfinite(loss) and all(torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0


def test_the_schedule_key_reaches_a_fresh_model_and_names_bad_values(tmp_path):
    text = "".join(line for line in DEMO.read_text().splitlines(keepends=True) if not line.startswith("init:"))
    path = tmp_path / "s.yaml"
    path.write_text("init: zero-residual\n" + text)
    model = stage_start_model(load_schedule(path), 0, tmp_path / "run")
    ffn = next(m for m in model.modules() if isinstance(m, ConvFFN))
    assert ffn.fc2.weight.abs().sum() == 0
    path.write_text("init: default\n" + text)
    model = stage_start_model(load_schedule(path), 0, tmp_path / "run")
    ffn = next(m for m in model.modules() if isinstance(m, ConvFFN))
    assert ffn.fc2.weight.abs().sum() > 0
    path.write_text("init: pass-through\n" + text)
    model = stage_start_model(load_schedule(path), 0, tmp_path / "run")
    assert model.motion_codec.structure_head[0].weight.abs().sum() == 0  # flows start at zero
    path.write_text("init: zeros\n" + text)
    with pytest.raises(ConfigError, match="init"):
        load_schedule(path)


def test_unknown_init_is_an_error():
    with pytest.raises(ValueError, match="unknown init 'he'"):
        initialise(VideoCodec(load_preset("tiny")), "he")


def test_the_schedule_offers_every_init():
    from nvc1b.model.init import INITS
    from nvc1b.train.schedule import Schedule

    assert typing.get_args(Schedule.model_fields["init"].annotation) == INITS


def _smooth(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    """Colour images smooth at the scale of a 16×16 block (bilinear up-sampling of 4×4 noise), in [0.1, 0.9]."""
    g = torch.Generator().manual_seed(seed)
    coarse = 0.1 + 0.8 * torch.rand(batch, 3, size // 16, size // 16, generator=g)
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def test_pass_through_intra_codes_block_means_in_colour_at_step_zero():
    from nvc1b.model.pass_through import PASS_THROUGH_GAINS
    from nvc1b.model.quantization import RateEstimator

    codec = _codec("pass-through").eval()
    x = _smooth(2, 64)
    means = F.interpolate(F.avg_pool2d(x, 16), scale_factor=16, mode="nearest")
    bpps = []
    with torch.no_grad():
        for q, gain in enumerate(PASS_THROUGH_GAINS):
            out = codec.intra_step(x, torch.full((2,), float(q)), coder=RateEstimator("round"))
            assert (out.x_hat - means).abs().max() <= 0.5 / gain + 1e-4  # the block means, quantised at 1/gain
            bpps.append(out.bpp().mean().item())
    assert all(a < b for a, b in itertools.pairwise(bpps)), bpps  # finer steps cost more bits at every rate point
    def colour(t):
        return (t - t.mean(1, keepdim=True)).pow(2).mean()

    assert colour(out.x_hat) > 0.9 * colour(means)


def test_pass_through_pframes_code_the_block_means_of_their_residual():
    from nvc1b.model.pass_through import PASS_THROUGH_GAINS
    from nvc1b.model.quantization import RateEstimator

    codec = _codec("pass-through").eval()
    frames = 0.99 * _smooth(1, 64, seed=1) + 0.01 * _smooth(4, 64, seed=2)  # a clip whose frames change a little
    means = F.interpolate(F.avg_pool2d(frames, 16), scale_factor=16, mode="nearest")
    tolerance = 0.5 / PASS_THROUGH_GAINS[-1] + 1e-4
    with torch.no_grad():
        out = codec.intra_step(frames[:1], 3.0, coder=RateEstimator("round"))
        intra_bpp = out.bpp().item()
        for t in range(1, 4):  # frame 1 adapts the I-frame's pixels, frames 2 and 3 the reference features
            out = codec.inter_step(frames[t : t + 1], out.state, 3.0, coder=RateEstimator("round"))
            assert (out.x_hat - means[t : t + 1]).abs().max() <= tolerance  # no drift from frame to frame
            torch.testing.assert_close(out.state.feature[:, :3], out.state.frame, atol=1e-5, rtol=0)  # F̂ carries x̂
            assert out.bpp("m", "z_m").item() < 1e-3  # no motion yet
            assert out.bpp().item() < 0.5 * intra_bpp  # a small change costs less than the I-frame's means


def test_pass_through_priors_follow_the_rate_point():
    """ẑ tells the priors the rate point (latent channel GAIN): a block mean quantised in steps of 1/8 costs fewer
    bits than one in steps of 1/128, for the I-frame and still more for a P-frame's small residual."""
    from nvc1b.model.pass_through import GAIN_UNIT, PASS_THROUGH_GAINS
    from nvc1b.model.quantization import RateEstimator

    codec = _codec("pass-through").eval()
    frames = 0.99 * _smooth(1, 64, seed=1) + 0.01 * _smooth(4, 64, seed=2)
    intra, inter, gains, latents = [], [], [], []
    hook = codec.intra.enc_out.register_forward_hook(lambda module, args, y: latents.append(y))
    with torch.no_grad():
        for q in range(len(PASS_THROUGH_GAINS)):
            out = codec.intra_step(frames[:1], float(q), coder=RateEstimator("round"))
            intra.append(out.bpp("y").item())
            gains.append(latents[-1][0, GAIN].unique().tolist())
            out = codec.inter_step(frames[1:2], out.state, float(q), coder=RateEstimator("round"))
            inter.append(out.bpp("y").item())
    hook.remove()
    assert gains == [[g / GAIN_UNIT] for g in PASS_THROUGH_GAINS]
    assert all(a < b for a, b in itertools.pairwise(intra)) and intra[-1] > 2 * intra[0], intra
    assert all(a < b for a, b in itertools.pairwise(inter)) and inter[-1] > 4 * inter[0], inter
    assert out.bpp("z_y").item() < 0.002  # ẑ's copy of it: a few bits per 64×64 block


def test_pass_through_opens_the_residual_paths_within_a_few_steps():
    codec = _codec("pass-through").train()
    frames = _smooth(2, 64, seed=2)
    recon_in = codec.contextual_codec.recon_in.weight
    decoder_cols = recon_in.shape[1] - codec.temporal_context_mining.pyramid.level0[0].out_channels
    optimizer = torch.optim.Adam(codec.parameters(), lr=1e-3)
    for _ in range(3):
        ref = codec.intra_step(frames[:1], 3.0)
        out = codec.inter_step(frames[1:], ref.state.detach(), 3.0)
        loss = 1000 * F.mse_loss(ref.x_hat, frames[:1]) + 1000 * F.mse_loss(out.x_hat, frames[1:]) \
            + ref.bpp().mean() + out.bpp().mean()
        optimizer.zero_grad()
        loss.backward()
        assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in codec.parameters() if p.grad is not None)
        optimizer.step()
    assert recon_in[:3, :decoder_cols].abs().sum() > 0  # the P-frame decoder now reaches the frame
    assert codec.intra.enc_out[-1].weight[GAIN + 1 :].abs().sum() > 0  # so does every other intra latent channel


def test_pass_through_fits_the_full_preset_and_refuses_swin_blocks():
    from nvc1b.model.pass_through import pass_through_intra

    with torch.device("meta"):
        codec = VideoCodec(load_preset("nvc1b"))
    initialise(codec, "pass-through")  # every width of the paper's model admits it
    cfg = load_preset("tiny")
    swin = cfg.model_copy(update={"intra": cfg.intra.model_copy(update={"block_type": "swin"})})
    with pytest.raises(ValueError, match="block_type 'conv'"):
        pass_through_intra(VideoCodec(swin).intra)
