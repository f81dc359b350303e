"""Training for the YUV pipeline: the schedule's colour space, the 6:1:1-weighted YUV MSE, the clips converted to
nearest-upsampled BT.709 4:4:4 before coding, and stages/nvc1b_yuv.yaml as the YUV twin of the RGB schedule."""

from pathlib import Path

import pytest
import torch

from nvc1b.data import video
from nvc1b.errors import ConfigError
from nvc1b.train.clip import ClipLoss, ClipSpec, set_trainable
from nvc1b.train.losses import mse
from nvc1b.train.schedule import load_schedule

ROOT = Path(__file__).resolve().parents[1]


def test_yuv_mse_weights_the_planes_six_one_one():
    a = torch.zeros(2, 3, 4, 4)
    b = torch.zeros(2, 3, 4, 4)
    b[0, 0] = 0.1  # Y error only
    b[1, 1] = 0.1  # U error only
    assert torch.allclose(mse(a, b, "yuv"), torch.tensor([6 * 0.01 / 8, 0.01 / 8]))
    assert torch.allclose(mse(a, b), torch.tensor([0.01 / 3, 0.01 / 3]))


def test_the_yuv_schedule_is_the_rgb_one_with_its_colour_space():
    rgb = load_schedule(ROOT / "stages" / "nvc1b_rgb.yaml")
    yuv = load_schedule(ROOT / "stages" / "nvc1b_yuv.yaml")
    assert rgb.colorspace == "rgb" and yuv.colorspace == "yuv"
    assert yuv.model_copy(update={"colorspace": "rgb"}) == rgb


def test_an_unknown_colour_space_names_file_and_key(tmp_path):
    text = (ROOT / "stages" / "demo.yaml").read_text() + "colorspace: ycocg\n"
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"s\.yaml: key 'colorspace'"):
        load_schedule(tmp_path / "s.yaml")


def test_clips_are_coded_as_nearest_444_and_measured_with_the_yuv_mse(tiny_model):
    set_trainable(tiny_model, "Intra")
    rgb = torch.nn.functional.avg_pool2d(torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)), 3, 1, 1)
    clip = rgb[:, None]  # (B, T=1, 3, H, W)
    yuv = video.rgb_to_yuv444_nearest(clip)
    y, u, v = video.rgb_to_yuv420(rgb)
    assert torch.equal(yuv[:, 0, 0], y) and torch.equal(yuv[:, 0, 1, ::2, ::2], u)
    assert torch.equal(yuv[:, 0, 2, 1::2, 1::2], v)
    spec = ClipSpec(parts="Intra", loss="intra", frames=1, lambdas=(85.0, 170.0, 380.0, 840.0),
                    frame_weights=(0.5, 1.2, 0.5, 0.9), colorspace="yuv")
    tiny_model.eval()
    with torch.no_grad():
        q = torch.tensor([1.0, 2.0])
        torch.manual_seed(0)
        _, metrics = ClipLoss(tiny_model, spec)(clip, q)
        torch.manual_seed(0)
        out = tiny_model.intra_step(yuv[:, 0], q)
    tiny_model.train()
    assert metrics["D"].item() == pytest.approx(mse(out.x_hat, yuv[:, 0], "yuv").mean().item(), rel=1e-6)
