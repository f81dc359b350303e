"""FFmpeg anchors: a clear one-line message without FFmpeg; with it (skipped otherwise), x265 low-delay curves in
the evaluator's layout: I-frames at the intra period, more bits at lower QP, finished points reused."""

import json
import shutil

import pytest
from evalhelpers import write_test_set

from nvc1b.cli.main import main
from nvc1b.eval.anchors import AnchorError, encoder_options, find_ffmpeg, make_anchors
from nvc1b.eval.curves import load_results, rd_hull
from nvc1b.eval.results import ResultsError

HAVE_FFMPEG = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def test_missing_ffmpeg_is_a_clear_one_line_error(tmp_path, capsys):
    with pytest.raises(AnchorError, match="need FFmpeg and ffprobe"):
        find_ffmpeg("x265", ffmpeg=str(tmp_path / "no-ffmpeg"))
    yaml_path = write_test_set(tmp_path / "set")
    code = main(["anchors", "x265", "--dataset", str(yaml_path), "--ffmpeg", str(tmp_path / "no-ffmpeg"),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1 and "apt-get install ffmpeg" in err
    assert not (tmp_path / "out").exists()


def test_low_delay_options():
    x265 = " ".join(encoder_options("x265", 32, 16))
    assert "libx265" in x265 and "medium" in x265 and "bframes=0" in x265 and "keyint=16:min-keyint=16" in x265
    x264 = encoder_options("x264", 27, 32)
    assert x264[x264.index("-bf") + 1] == "0" and x264[x264.index("-g") + 1] == "32"
    assert x264[x264.index("-qp") + 1] == "27"


@pytest.mark.skipif(not HAVE_FFMPEG, reason="FFmpeg with ffprobe is not installed")
def test_x265_anchors_through_ffmpeg(tmp_path):
    yaml_path = write_test_set(tmp_path / "set")
    result = make_anchors("x265", yaml_path, tmp_path / "x265", qps=(27, 37), progress=False)
    folder = tmp_path / "x265" / "rgb" / "mini"
    assert result.folder == folder and result.computed == 4
    point = json.loads((folder / "sequences" / "Alpha" / "qp37.json").read_text())
    rows = (folder / "sequences" / "Alpha" / "qp37.csv").read_text().splitlines()[1:]
    assert [r.split(",")[1] for r in rows] == ["I", "P", "I"]  # intra period 2, no B-frames
    assert sum(int(r.split(",")[2]) for r in rows) == point["bytes"]
    assert 20 < point["psnr_rgb"] < 60 and 20 < point["psnr_yuv"] < 60
    curve = load_results(tmp_path / "x265")["mini"]
    assert curve.label == "x265" and curve.bpp[0] < curve.bpp[1] and curve.psnr[0] < curve.psnr[1]
    assert curve.extra["point"] == ("qp37", "qp27")
    again = make_anchors("x265", yaml_path, tmp_path / "x265", qps=(27, 37), progress=False)
    assert (again.computed, again.reused) == (0, 4)


def test_rd_hull_keeps_the_upper_convex_hull_up_to_the_best_psnr():
    # (bpp, PSNR): a dominated point (0.15 costs more than 0.1 for less), one under the chord from 0.2 to 0.8
    # (0.4 at 25.5 dB; the chord in log-rate passes 26.5 there), one past the best PSNR (1.6 at 29.5)
    bpp = [0.4, 0.1, 0.2, 0.15, 0.8, 1.6]
    psnr = [25.5, 20.0, 24.0, 19.0, 29.0, 28.5]
    assert rd_hull(bpp, psnr) == [1, 2, 4]
    assert rd_hull([0.1], [20.0]) == [0] and rd_hull([], []) == []


def test_a_ladder_too_small_to_code_is_a_clear_error(tmp_path):
    if not HAVE_FFMPEG:
        pytest.skip("FFmpeg with ffprobe is not installed")
    yaml_path = write_test_set(tmp_path / "set")
    with pytest.raises(AnchorError, match=r"mini/Alpha: .* downscaled by 8 is .* below 16 px a side"):
        make_anchors("x265", yaml_path, tmp_path / "x265", qps=(51,), scales=(1, 8), progress=False)
    assert not (tmp_path / "x265").exists()


@pytest.mark.skipif(not HAVE_FFMPEG, reason="FFmpeg with ffprobe is not installed")
def test_x265_resolution_ladder_reaches_below_qp51_and_its_curve_is_the_hull(tmp_path):
    yaml_path = write_test_set(tmp_path / "set")
    result = make_anchors("x265", yaml_path, tmp_path / "ladder", qps=(37, 51), scales=(1, 2), progress=False)
    assert result.computed == 8 and result.summary["label"] == "x265 ladder"
    folder = tmp_path / "ladder" / "rgb" / "mini"
    half = json.loads((folder / "sequences" / "Alpha" / "qp51-s2.json").read_text())
    full = json.loads((folder / "sequences" / "Alpha" / "qp51.json").read_text())
    assert (half["width"], half["height"]) == (full["width"], full["height"])  # measured at full size
    assert half["bytes"] < full["bytes"] and half["psnr_rgb"] < full["psnr_rgb"]
    points = {p["point"]: p for p in result.summary["points"]}
    assert set(points) == {"qp37", "qp51", "qp37-s2", "qp51-s2"}
    curve = load_results(tmp_path / "ladder")["mini"]
    names = [p["point"] for p in sorted(points.values(), key=lambda p: p["bpp"])]
    bpp = [points[n]["bpp"] for n in names]
    psnr = [points[n]["psnr_rgb_float"] for n in names]
    assert list(curve.extra["point"]) == [names[i] for i in rd_hull(bpp, psnr)]
    assert curve.extra["point"][0] == "qp51-s2" and curve.psnr[0] < points["qp51"]["psnr_rgb_float"]
    csv_rows = (folder / "dataset.csv").read_text().splitlines()[1:]
    assert len(csv_rows) == len(curve.bpp)  # the CSV holds the hull too
    with pytest.raises(ResultsError, match="holds results of another evaluation"):  # no mixing with a plain run
        make_anchors("x265", yaml_path, tmp_path / "ladder", qps=(37, 51), progress=False)


@pytest.mark.skipif(not HAVE_FFMPEG, reason="FFmpeg with ffprobe is not installed")
def test_anchors_coded_two_at_a_time_match_one_at_a_time(tmp_path):
    yaml_path = write_test_set(tmp_path / "set")
    one = make_anchors("x265", yaml_path, tmp_path / "one", qps=(32, 51), scales=(1, 2), progress=False)
    two = make_anchors("x265", yaml_path, tmp_path / "two", qps=(32, 51), scales=(1, 2), progress=False, jobs=2)
    fields = ("point", "bpp", "psnr_rgb", "psnr_yuv_float")
    assert [[p[f] for f in fields] for p in one.summary["points"]] == [[p[f] for f in fields] for p in two.summary["points"]]
    assert two.computed == 8 and make_anchors("x265", yaml_path, tmp_path / "two", qps=(32, 51), scales=(1, 2),
                                              progress=False, jobs=2).reused == 8
