"""``evaluate`` / ``nvc1b eval`` on a tiny YUV test set with a briefly trained tiny model: every output written,
numbers equal to a direct computation from the bitstream, a second run reusing the finished points, one-line
errors for missing files, truncated YUV files and unknown YAML keys."""

import json

import numpy as np
import pytest
import torch
from evalhelpers import FRAMES, H, W, write_test_set

from nvc1b.cli.main import main
from nvc1b.coding import decode_sequence, encode_sequence, load_coding_model
from nvc1b.data import video
from nvc1b.data.conversions import yuv420_to_rgb, yuv420_to_rgb8
from nvc1b.errors import ConfigError, DataError
from nvc1b.eval.curves import load_results
from nvc1b.eval.evaluate import evaluate
from nvc1b.eval.results import ResultsError


@pytest.fixture(scope="module")
def codec(trained_tiny_export):
    return load_coding_model(trained_tiny_export)


@pytest.fixture(scope="module")
def test_set(tmp_path_factory):
    return write_test_set(tmp_path_factory.mktemp("mini"))


def test_eval_writes_every_output_and_matches_the_bitstream(tmp_path, codec, test_set):
    result = evaluate(codec, test_set, tmp_path / "out", q_indexes=(0, 3), progress=False)
    folder = tmp_path / "out" / "rgb" / "mini"
    assert result.folder == folder and result.computed == 4 and result.reused == 0
    for f in ("run.json", "dataset.json", "dataset.csv"):
        assert (folder / f).is_file()
    for seq in ("Alpha", "Beta"):
        for point in ("q0", "q3"):
            assert (folder / "sequences" / seq / f"{point}.json").is_file()
            lines = (folder / "sequences" / seq / f"{point}.csv").read_text().splitlines()
            assert lines[0].startswith("frame,type,bytes,bpp,psnr_rgb") and len(lines) == 1 + FRAMES
            assert [ln.split(",")[1] for ln in lines[1:]] == ["I", "P", "I"]

    # the same numbers, computed directly: the RGB test set by DCVC's conversion, encode, decode, PSNR of the 8-bit
    # RGB output and of the float output against the 8-bit input
    y, u, v = video.read_yuv420(test_set.parent / "Alpha.yuv", W, H, 0, FRAMES)
    source8 = yuv420_to_rgb8(y, u, v, "dcvc")
    encoded = encode_sequence(codec, torch.from_numpy(source8).float() / 255, q_index=3, intra_period=2)
    frames = decode_sequence(codec, encoded.stream).frames
    decoded = video.to_uint8(frames).astype(np.float64)
    mse = ((decoded - source8) ** 2).mean(axis=(1, 2, 3))
    mse_float = ((frames.double().clamp(0, 1).numpy() - source8 / 255.0) ** 2).mean(axis=(1, 2, 3))
    point = json.loads((folder / "sequences" / "Alpha" / "q3.json").read_text())
    assert point["bytes"] == len(encoded.stream)
    assert point["bpp"] == pytest.approx(8 * len(encoded.stream) / (W * H * FRAMES))
    payload = sum(s.payload_bytes for s in encoded.frames)
    assert point["payload_bytes"] == payload and point["bpp_payload"] == pytest.approx(8 * payload / (W * H * FRAMES))
    assert point["psnr_rgb"] == pytest.approx(np.mean(10 * np.log10(255**2 / mse)), abs=1e-9)
    assert point["psnr_rgb_float"] == pytest.approx(np.mean(10 * np.log10(1 / mse_float)), abs=1e-9)
    assert point["decoder_matches"] is True and point["ms_ssim"] is None  # 48x32 is too small for MS-SSIM
    assert point["bits"]["m"] > 0 and point["encode_seconds"] > 0 and point["decode_seconds"] > 0

    summary = json.loads((folder / "dataset.json").read_text())
    assert summary["schema"] == "nvc1b.eval/2" and summary["quality_metric"] == "psnr_rgb_float"
    assert summary["rgb_conversion"] == "dcvc" and summary["psnr"] == "float"
    bpps = [p["bpp"] for p in summary["points"]]
    assert sorted(p["point"] for p in summary["points"]) == ["q0", "q3"] and bpps == sorted(bpps)
    q3 = next(p for p in summary["points"] if p["point"] == "q3")
    seq_bpp = [s["bpp"] for rs in summary["sequences"].values() for s in rs if s["point"] == "q3"]
    assert q3["bpp"] == pytest.approx(np.mean(seq_bpp)) and q3["sequences"] == 2
    curve = load_results(tmp_path / "out")["mini"]
    assert curve.bpp == tuple(p["bpp"] for p in summary["points"]) and curve.colorspace == "rgb"
    assert curve.psnr == tuple(p["psnr_rgb_float"] for p in summary["points"]) and curve.metric == "psnr_rgb_float"


def test_second_run_reuses_finished_points(tmp_path, codec, test_set):
    out = tmp_path / "out"
    evaluate(codec, test_set, out, q_indexes=(1,), progress=False)
    done = out / "rgb" / "mini" / "sequences" / "Alpha" / "q1.json"
    stamp = done.stat().st_mtime_ns
    again = evaluate(codec, test_set, out, q_indexes=(1, 2), progress=False)
    assert (again.computed, again.reused) == (2, 2)  # only the new rate point is coded
    assert done.stat().st_mtime_ns == stamp
    assert sorted(p["point"] for p in again.summary["points"]) == ["q1", "q2"]


def test_results_of_another_model_or_protocol_are_not_mixed(tmp_path, codec, test_set):
    out = tmp_path / "out"
    evaluate(codec, test_set, out, q_indexes=(0,), progress=False)
    with pytest.raises(ResultsError, match="'frames' was 3, now 2"):
        evaluate(codec, test_set, out, q_indexes=(0,), frames=2, progress=False)


def test_yuv420_via_rgb_measures_the_4_2_0_output(tmp_path, codec, test_set):
    result = evaluate(codec, test_set, tmp_path / "out", q_indexes=(2,), colorspace="yuv420-via-rgb", psnr="integer",
                      progress=False)
    assert result.folder.parent.name == "yuv420-via-rgb" and result.summary["quality_metric"] == "psnr_yuv"
    assert "caps the YUV PSNR" in result.summary["note"]
    y, u, v = video.read_yuv420(test_set.parent / "Beta.yuv", W, H, 0, FRAMES)
    rgb = yuv420_to_rgb(y, u, v, "dcvc").float()  # floats, not 8-bit
    encoded = encode_sequence(codec, rgb, q_index=2, intra_period=2)
    planes = video.rgb_to_yuv420(encoded.reconstruction.double().clamp(0, 1))
    y_hat, u_hat, v_hat = ((p * 255).round().numpy() for p in planes)
    psnr = lambda a, b: 10 * np.log10(255**2 / ((a.astype(float) - b) ** 2).mean(axis=(1, 2)))
    expected = np.mean((6 * psnr(y, y_hat) + psnr(u, u_hat) + psnr(v, v_hat)) / 8)
    point = json.loads((result.folder / "sequences" / "Beta" / "q2.json").read_text())
    assert point["psnr_yuv"] == pytest.approx(expected, abs=1e-9)
    assert point["psnr_yuv"] < point["psnr_yuv_cap"] < 100


def test_yuv420_codes_nearest_444_and_measures_the_mean_420(tmp_path, codec, test_set):
    """The DCVC-DC/FM pipeline (a YUV model's; the tiny RGB model just runs through it here)."""
    result = evaluate(codec, test_set, tmp_path / "out", q_indexes=(1,), progress=False, colorspace="yuv420")
    planes = video.read_yuv420(test_set.parent / "Alpha.yuv", W, H, 0, FRAMES)
    y, u, v = (torch.from_numpy(p.astype(np.float64)) / 255 for p in planes)
    up = lambda c: c.repeat_interleave(2, -2).repeat_interleave(2, -1)
    encoded = encode_sequence(codec, torch.stack([y, up(u), up(v)], 1).float(), q_index=1, intra_period=2)
    x_hat = encoded.reconstruction.double().clamp(0, 1)
    chroma = torch.nn.functional.avg_pool2d(x_hat[:, 1:], 2)
    mse = lambda a, b: ((a - b) ** 2).mean(dim=(-2, -1)).numpy()
    frame_psnr = (6 * 10 * np.log10(1 / mse(x_hat[:, 0], y)) + 10 * np.log10(1 / mse(chroma[:, 0], u))
                  + 10 * np.log10(1 / mse(chroma[:, 1], v))) / 8
    point = json.loads((result.folder / "sequences" / "Alpha" / "q1.json").read_text())
    assert point["psnr_yuv_float"] == pytest.approx(np.mean(frame_psnr), abs=1e-9)
    assert point["psnr_yuv_cap"] is None and result.summary["quality_metric"] == "psnr_yuv_float"


def test_cli_eval_prints_the_table(tmp_path, capsys, trained_tiny_export, test_set):
    code = main(["eval", "--checkpoint", str(trained_tiny_export), "--dataset", str(test_set), "--q-indexes", "0",
                 "--frames", "2", "--crop", "32x32", "--channel-share", "--quiet", "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert code == 0 and "q0" in out and "crop 32x32" in out
    summary = json.loads((tmp_path / "o" / "rgb" / "mini" / "dataset.json").read_text())
    assert summary["sizes"] == {"Alpha": [32, 32], "Beta": [32, 32]} and summary["frames"] == 2
    share = json.loads((tmp_path / "o" / "rgb" / "mini" / "channel_share.json").read_text())
    assert sum(share["y"]) == pytest.approx(1.0) and sum(share["m"]) == pytest.approx(1.0)


def assert_one_line_error(capsys, argv, *fragments):
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("nvc1b: error:") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err


def test_missing_truncated_and_misconfigured_inputs_are_one_line_errors(tmp_path, capsys, trained_tiny_export):
    base = ["eval", "--checkpoint", str(trained_tiny_export), "--quiet", "--out", str(tmp_path / "o"), "--dataset"]
    # every sequence is checked before any is coded: nothing is written for a set with a bad file
    yaml_path = write_test_set(tmp_path / "a")
    (tmp_path / "a" / "Beta.yuv").unlink()
    assert_one_line_error(capsys, [*base, str(yaml_path)], "Beta.yuv: YUV file not found")
    assert not (tmp_path / "o").exists()

    yaml_path = write_test_set(tmp_path / "b")
    with open(tmp_path / "b" / "Alpha.yuv", "ab") as f:
        f.write(b"\0" * 100)
    assert_one_line_error(capsys, [*base, str(yaml_path)], "Alpha.yuv", "not a whole number of 48x32 8-bit YUV420 frames")

    yaml_path = write_test_set(tmp_path / "c", extra="colour: bt709\n")
    assert_one_line_error(capsys, [*base, str(yaml_path)], "mini.yaml", "key 'colour': unknown key")
    with pytest.raises(ConfigError):
        evaluate(trained_tiny_export, yaml_path, tmp_path / "o", progress=False)

    assert_one_line_error(capsys, [*base, str(tmp_path / "nowhere.yaml")], "nowhere.yaml: file not found")
    yaml_path = write_test_set(tmp_path / "d")
    assert_one_line_error(capsys, [*base, str(yaml_path), "--frames", "9"], "Alpha has 4 frames, fewer than the 9")
    with pytest.raises(DataError, match="larger than Alpha"):
        evaluate(trained_tiny_export, yaml_path, tmp_path / "o", crop=(64, 64), progress=False)


def test_the_sweep_reads_results_through_the_evaluator_seam(tmp_path, codec, test_set):
    """``nvc1b.sweep.evaluation.evaluator()`` names this loader and BD-rate; a sweep model's eval folder holds one
    ``nvc1b eval --out`` folder per test set."""
    from nvc1b.sweep.evaluation import evaluator

    evaluate(codec, test_set, tmp_path / "eval" / "mini", q_indexes=(0, 3), frames=2, progress=False)
    load_results, bd_rate = evaluator()
    curves = load_results(tmp_path / "eval")
    assert list(curves) == ["mini"]
    assert bd_rate(curves["mini"], curves["mini"]) == pytest.approx(0.0, abs=1e-9)
