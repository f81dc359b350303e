"""``nvc1b encode`` / ``nvc1b decode``: YUV and PNG round trips through the command line, and user errors as one
line with a non-zero exit and nothing left behind."""

import numpy as np
import pytest
import torch

from nvc1b.cli.main import main
from nvc1b.coding import decode_sequence, load_coding_model
from nvc1b.data.video import read_png, read_yuv420, rgb_to_yuv420, to_uint8, write_png, write_yuv420
from nvc1b.model import VideoCodec
from nvc1b.model.export import save_model

WIDTH, HEIGHT = 48, 32


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    g = torch.Generator().manual_seed(7)
    x = torch.nn.functional.avg_pool2d(torch.rand(4, 3, HEIGHT, WIDTH, generator=g), 5, 1, 2)
    write_yuv420(folder / "clip.yuv", *(to_uint8(p) for p in rgb_to_yuv420(x)))
    (folder / "pngs").mkdir()
    for i, frame in enumerate(x):
        write_png(folder / "pngs" / f"im{i + 1}.png", to_uint8(frame.permute(1, 2, 0)))
    return folder


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_yuv_round_trip(tmp_path, capsys, inputs, trained_tiny_export):
    nvc, rec = tmp_path / "clip.nvc", tmp_path / "rec.yuv"
    code, out, err = run(capsys, "encode", "--checkpoint", trained_tiny_export, "--input", inputs / "clip.yuv",
                         "--size", f"{WIDTH}x{HEIGHT}", "--output", nvc, "--intra-period", 2, "--q-index", 3)
    assert code == 0, err
    assert "4 frames:" in out and "bpp" in out and "dB" in out and "s/frame" in out
    code, out, err = run(capsys, "decode", nvc, "--checkpoint", trained_tiny_export, "--output", rec,
                         "--reference", inputs / "clip.yuv")
    assert code == 0 and err == "", err
    assert "PSNR" in out and "decode" in out
    decoded = decode_sequence(load_coding_model(trained_tiny_export), nvc.read_bytes())
    planes = read_yuv420(rec, WIDTH, HEIGHT)
    for written, expected in zip(planes, rgb_to_yuv420(decoded.frames)):
        assert np.array_equal(written, to_uint8(expected))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.nvc", "rec.yuv"]  # no temporary files left


def test_png_round_trip(tmp_path, capsys, inputs, trained_tiny_export):
    nvc, rec = tmp_path / "clip.nvc", tmp_path / "rec"
    code, _, err = run(capsys, "encode", "--checkpoint", trained_tiny_export, "--input", inputs / "pngs",
                       "--output", nvc, "--frames", 2)
    assert code == 0, err
    code, out, err = run(capsys, "decode", nvc, "--checkpoint", trained_tiny_export, "--output", rec,
                         "--reference", inputs / "pngs")
    assert code == 0, err
    assert "2 frames:" in out and "PSNR" in out
    decoded = decode_sequence(load_coding_model(trained_tiny_export), nvc.read_bytes())
    written = sorted(rec.iterdir())
    assert [p.name for p in written] == ["00001.png", "00002.png"]
    for path, frame in zip(written, decoded.frames):
        assert np.array_equal(read_png(path), to_uint8(frame.permute(1, 2, 0)))


def assert_one_line_error(code, err, *fragments):
    assert code != 0
    assert err.startswith("nvc1b: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


def test_wrong_yuv_size_names_frame_and_byte(tmp_path, capsys, inputs, trained_tiny_export):
    code, _, err = run(capsys, "encode", "--checkpoint", trained_tiny_export, "--input", inputs / "clip.yuv",
                       "--size", f"{WIDTH}x{HEIGHT + 2}", "--output", tmp_path / "x.nvc")
    assert_one_line_error(code, err, "frame 3 at byte", "truncated")
    code, _, err = run(capsys, "encode", "--checkpoint", trained_tiny_export, "--input", inputs / "clip.yuv",
                       "--output", tmp_path / "x.nvc")
    assert_one_line_error(code, err, "--size")
    assert list(tmp_path.iterdir()) == []


def test_decode_errors_leave_no_output(tmp_path, capsys, inputs, trained_tiny_export, tiny_config):
    nvc = tmp_path / "clip.nvc"
    assert run(capsys, "encode", "--checkpoint", trained_tiny_export, "--input", inputs / "pngs", "--output", nvc)[0] == 0
    truncated = tmp_path / "cut.nvc"
    truncated.write_bytes(nvc.read_bytes()[:-9])
    code, _, err = run(capsys, "decode", truncated, "--checkpoint", trained_tiny_export, "--output", tmp_path / "a.yuv")
    assert_one_line_error(code, err, "cut.nvc: frame 3 (byte", "truncated")
    other = save_model(VideoCodec(tiny_config), tmp_path / "other" / "exports" / "w.safetensors")
    code, _, err = run(capsys, "decode", nvc, "--checkpoint", other.parent.parent, "--output", tmp_path / "b")
    assert_one_line_error(code, err, "wrong checkpoint")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    code, _, err = run(capsys, "decode", nvc, "--checkpoint", trained_tiny_export, "--output", tmp_path / "full")
    assert_one_line_error(code, err, "not empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.nvc", "cut.nvc", "full", "other"]
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
