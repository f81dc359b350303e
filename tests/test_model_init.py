"""The ``init`` schedule key: zero-residual starts every residual block as its shortcut."""

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
    text = DEMO.read_text()
    path = tmp_path / "s.yaml"
    path.write_text("init: zero-residual\n" + text.replace("init: zero-residual\n", ""))
    model = stage_start_model(load_schedule(path), 0, tmp_path / "run")
    ffn = next(m for m in model.modules() if isinstance(m, ConvFFN))
    assert ffn.fc2.weight.abs().sum() == 0
    path.write_text("init: default\n" + text.replace("init: zero-residual\n", ""))
    model = stage_start_model(load_schedule(path), 0, tmp_path / "run")
    ffn = next(m for m in model.modules() if isinstance(m, ConvFFN))
    assert ffn.fc2.weight.abs().sum() > 0
    path.write_text("init: zeros\n" + text.replace("init: zero-residual\n", ""))
    with pytest.raises(ConfigError, match="init"):
        load_schedule(path)


def test_unknown_init_is_an_error():
    with pytest.raises(ValueError, match="unknown init 'he'"):
        initialise(VideoCodec(load_preset("tiny")), "he")


def test_the_schedule_offers_every_init():
    from nvc1b.model.init import INITS
    from nvc1b.train.schedule import Schedule

    assert typing.get_args(Schedule.model_fields["init"].annotation) == INITS
