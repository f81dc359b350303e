"""FFmpeg anchors: a clear one-line message without FFmpeg; with it (skipped otherwise), x265 low-delay curves in
the evaluator's layout: I-frames at the intra period, more bits at lower QP, finished points reused."""

import json
import shutil

import pytest
from evalhelpers import write_test_set

from nvc1b.cli.main import main
from nvc1b.eval.anchors import AnchorError, encoder_options, find_ffmpeg, make_anchors
from nvc1b.eval.curves import load_results

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
