"""The YUV pipelines with a lossless stand-in codec: DCVC-DC/FM's (nearest 4:4:4 in, 2×2 means out) round-trips
exactly, the RGB-model path is capped and says so; the results record both PSNRs, the conversion and the rates
with and without the container."""

import json

import numpy as np
import pytest
from evalhelpers import FRAMES, H, W, write_test_set

from nvc1b.data import video
from nvc1b.data.testsets import load_test_set, source_depth
from nvc1b.eval.metrics import measure
from nvc1b.eval.protocol import output_planes, read_references, resolve_protocol, yuv420_mean, yuv444_nearest
from nvc1b.eval.results import PSNR_CAP, frame_row, summarize
from nvc1b.eval.runner import run_dataset


def evaluate_lossless(test_set, out, colorspace, **protocol_options):
    """Every frame 'decoded' as the coder's input itself, through the evaluator's own loop and result files."""
    protocol = resolve_protocol(test_set, colorspace=colorspace, **protocol_options)
    depth = source_depth(test_set)

    def code_point(sequence, name, _):
        width, height = protocol.size(sequence)
        rows = []
        for i, (x, reference) in enumerate(read_references(test_set, sequence, protocol)):
            quality = measure(reference, output_planes(x, protocol, depth), False)
            rows.append(frame_row(i, "I", 20, width * height, quality, None, None, payload_bytes=16))
        return summarize(sequence.name, name, 0.0, width, height, 20 * len(rows) + 27, rows), rows

    return run_dataset(out, test_set, protocol, {"kind": "lossless"}, "lossless", [("q0", 0.0)], code_point, False)


@pytest.fixture(scope="module")
def test_set(tmp_path_factory):
    return load_test_set(write_test_set(tmp_path_factory.mktemp("mini")))


def test_nearest_444_and_mean_420_are_inverse():
    rng = np.random.default_rng(0)
    y, u, v = (video.to_float(rng.integers(0, 256, s, dtype=np.uint8)).double() for s in ((4, 6), (2, 3), (2, 3)))
    x = yuv444_nearest(y, u, v)
    assert x.shape == (3, 4, 6) and x[1, 1, 1] == u[0, 0] and x[2, 3, 5] == v[1, 2]
    assert all(bool((a == b).all()) for a, b in zip(yuv420_mean(x), (y, u, v), strict=True))


def test_a_lossless_codec_on_the_yuv_pipeline_reaches_the_cap(tmp_path, test_set):
    result = evaluate_lossless(test_set, tmp_path / "out", "yuv420")
    point = result.summary["points"][0]
    for key in ("psnr_yuv", "psnr_yuv_float", "psnr_y", "psnr_u_float", "psnr_rgb", "psnr_rgb_float"):
        assert point[key] == PSNR_CAP, key
    assert result.summary["quality_metric"] == "psnr_yuv_float" and result.summary["rgb_conversion"] == "dcvc"
    run = json.loads((result.folder / "run.json").read_text())
    assert run["colorspace"] == "yuv420" and run["psnr"] == "float" and run["rgb_conversion"] == "dcvc"
    assert point["bpp"] == pytest.approx(8 * (20 * FRAMES + 27) / (W * H * FRAMES))
    assert point["bpp_payload"] == pytest.approx(8 * 16 / (W * H))


def test_the_rgb_model_path_is_capped_and_records_the_cap(tmp_path, test_set):
    result = evaluate_lossless(test_set, tmp_path / "out", "yuv420-via-rgb", psnr="integer")
    point = result.summary["points"][0]
    assert result.summary["quality_metric"] == "psnr_yuv"
    assert 30 < point["psnr_u_float"] < PSNR_CAP and point["psnr_yuv_float"] < PSNR_CAP  # clamped RGB loses chroma
    assert point["psnr_yuv"] < PSNR_CAP
    assert (result.folder.parent.name, result.folder.name) == ("yuv420-via-rgb", "mini")


def test_a_10_bit_set_round_trips_exactly_on_the_yuv_pipeline(tmp_path):
    rng = np.random.default_rng(2)
    planes = [rng.integers(0, 1024, (2, *s)) for s in ((8, 8), (4, 4), (4, 4))]
    video.write_yuv420(tmp_path / "s.yuv", *planes, bit_depth=10)
    (tmp_path / "ten.yaml").write_text(
        "name: ten\nformat: yuv420\nbit_depth: 10\nroot: .\nframes: 2\nintra_period: 2\n"
        "sequences:\n  - {name: S, file: s.yuv, width: 8, height: 8, fps: 30, frames: 2}\n")
    test_set = load_test_set(tmp_path / "ten.yaml")
    protocol = resolve_protocol(test_set, colorspace="yuv420")
    (x, reference), _ = read_references(test_set, test_set.sequences[0], protocol)
    assert reference.depth == 10 and np.array_equal(reference.yuv[0], planes[0][0])
    assert measure(reference, output_planes(x, protocol, 10), False).psnr_yuv == float("inf")
    result = evaluate_lossless(test_set, tmp_path / "out", "yuv420")
    assert result.summary["points"][0]["psnr_yuv"] == PSNR_CAP
