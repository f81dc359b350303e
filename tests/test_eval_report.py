"""Per-channel bitrate share (eqs. 7, 8), the figures and report.md: links to PNGs that exist, BD-rate tables
with the expected values, the paper's tables for reference."""

import re

import pytest
import torch
from evalhelpers import write_test_set
from PIL import Image

from nvc1b.cli.main import main
from nvc1b.coding import load_coding_model
from nvc1b.eval.channels import ChannelBitsRecorder, ChannelShare, channel_bitrate_share
from nvc1b.eval.evaluate import evaluate
from nvc1b.eval.reference import paper_tables
from nvc1b.eval.report import write_report
from nvc1b.eval.results import ResultsError
from nvc1b.model.quantization import RateEstimator


@pytest.fixture(scope="module")
def codec(trained_tiny_export):
    return load_coding_model(trained_tiny_export)


def test_recorder_splits_the_estimated_bits_by_channel(codec):
    frames = torch.nn.functional.avg_pool2d(torch.rand(2, 3, 48, 64), 5, 1, 2)
    recorder = ChannelBitsRecorder(RateEstimator("round"))
    with torch.inference_mode():
        state = codec.model.intra_step(frames[:1], 1.0, coder=RateEstimator("round")).state
        out = codec.model.inter_step(frames[1:], state, 1.0, coder=recorder)
    config = codec.model.config.interface
    assert recorder.bits["y"].shape == (config.latent_channels,)
    assert recorder.bits["m"].shape == (config.motion_latent_channels,)
    assert float(recorder.bits["y"].sum()) == pytest.approx(float(out.bits["y"]), rel=1e-5)
    assert float(recorder.bits["m"].sum()) == pytest.approx(float(out.bits["m"]), rel=1e-5)
    assert set(recorder.bits) == {"y", "m"}  # hyper-latents pass through unrecorded


def test_channel_share_sums_to_one_and_sorts(tmp_path, codec):
    yaml_path = write_test_set(tmp_path / "set")
    share = channel_bitrate_share(codec, yaml_path, q_indexes=(0, 3), progress=False)
    assert share.sequences == 2 and share.q_indexes == [0.0, 3.0] and share.dataset == "mini"
    for latent in ("y", "m"):
        values = share.sorted(latent)
        assert values.sum() == pytest.approx(1.0) and all(values[:-1] >= values[1:])
    share.save(tmp_path / "share.json")
    assert ChannelShare.load(tmp_path / "share.json") == share
    with pytest.raises(ResultsError, match="needs P-frames"):
        channel_bitrate_share(codec, yaml_path, intra_period=1, progress=False)


def test_report_links_figures_and_tables(tmp_path, codec, capsys):
    yaml_path = write_test_set(tmp_path / "set")
    result = evaluate(codec, yaml_path, tmp_path / "model", q_indexes=(0, 3), frames=2, progress=False)
    curve = result.curve
    anchor_csv = tmp_path / "anchor.csv"  # the model's curve at 1.2x the rate: BD-rate 1/1.2 - 1 = -16.7 %
    anchor_csv.write_text("bpp,psnr\n" + "".join(f"{1.2 * b},{p}\n" for b, p in zip(curve.bpp, curve.psnr)))
    share = channel_bitrate_share(codec, yaml_path, q_indexes=(0, 3), frames=2, progress=False)
    share.save(tmp_path / "share.json")

    assert main(["report", "--results", str(tmp_path / "model"), "--anchors", str(anchor_csv),
                 "--channel-share", str(tmp_path / "share.json"), "--out", str(tmp_path / "report")]) == 0
    path = tmp_path / "report" / "report.md"
    assert f"report: {path}" in capsys.readouterr().out
    text = path.read_text()
    for png in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        with Image.open(tmp_path / "report" / png) as image:
            assert image.format == "PNG" and image.size[0] > 300
    assert {"rd_rgb_mini.png", "channel_share.png"} <= set(re.findall(r"\(([^)]+\.png)\)", text))
    label = result.summary["label"]
    assert re.search(rf"\| {re.escape(label)} \| -16\.7 \| -16\.7 \|", text)
    assert "Table III" in text and "| NVC-1B | -27.0 |" in text
    assert f"| {label} | q0 |" in text


def test_report_without_results_is_an_error(tmp_path):
    with pytest.raises(ResultsError, match="no results to report"):
        write_report(tmp_path / "r", [tmp_path])


def test_paper_tables_hold_the_headline_numbers():
    tables = paper_tables()
    assert tables.tables["rgb"].value("NVC-1B", "Average") == -25.1
    assert tables.tables["rgb"].value("DCVC-SDD", "Average") == -12.7
    assert tables.tables["yuv420"].value("NVC-1B", "Average") == -20.5
    assert tables.tables["yuv420"].value("ECM", "Average") == -19.0
