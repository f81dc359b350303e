"""Outputs that never destroy inputs, verified exports and validated inputs (issue 16, cases 1, 4, 6 and 7 of its
Why): each a one-line error, a non-zero exit and the files as they were."""

import json
import os
import shutil
import struct
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from nvc1b.cli.main import main
from nvc1b.config.model import load_preset
from nvc1b.data.video import rgb_to_yuv420, to_uint8, write_yuv420
from nvc1b.errors import ConfigError, WeightsError
from nvc1b.eval.results import DatasetFolder
from nvc1b.files import DiskFullError, OutputError, write_bytes_atomic
from nvc1b.model import VideoCodec
from nvc1b.model.export import load_export, resolve_weights, save_model
from nvc1b.train.schedule import load_schedule
from nvc1b.train.trainer import RunOptions

WIDTH, HEIGHT = 32, 32
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    torch.manual_seed(0)
    return save_model(VideoCodec(load_preset("tiny")), tmp_path_factory.mktemp("export") / "tiny.safetensors")


@pytest.fixture
def clip(tmp_path):
    g = torch.Generator().manual_seed(3)
    x = torch.nn.functional.avg_pool2d(torch.rand(2, 3, HEIGHT, WIDTH, generator=g), 5, 1, 2)
    path = tmp_path / "clip.yuv"
    write_yuv420(path, *(to_uint8(p) for p in rgb_to_yuv420(x)))
    return path


def one_line_error(capsys, argv, exit_code=2):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == exit_code, err
    assert err.startswith("nvc1b: error: ") and err.count("\n") == 1, err
    return err


# case 1: an output path equal to an input destroys it
def test_encode_and_decode_refuse_an_output_that_is_an_input(tmp_path, capsys, export, clip):
    original = clip.read_bytes()
    err = one_line_error(capsys, ["encode", "--checkpoint", export, "--input", clip, "--size", f"{WIDTH}x{HEIGHT}",
                                  "--output", clip])
    assert "is the input" in err and str(clip) in err
    os.link(clip, tmp_path / "same-inode.yuv")  # another name for the same file
    one_line_error(capsys, ["encode", "--checkpoint", export, "--input", clip, "--size", f"{WIDTH}x{HEIGHT}",
                            "--output", tmp_path / "same-inode.yuv"])
    err = one_line_error(capsys, ["encode", "--checkpoint", export, "--input", clip, "--size", f"{WIDTH}x{HEIGHT}",
                                  "--output", tmp_path])
    assert "existing directory" in err
    assert clip.read_bytes() == original

    stream = tmp_path / "s.nvc"
    assert main(["encode", "--checkpoint", str(export), "--input", str(clip), "--size", f"{WIDTH}x{HEIGHT}",
                 "--output", str(stream), "--frames", "1"]) == 0
    capsys.readouterr()
    coded = stream.read_bytes()
    err = one_line_error(capsys, ["decode", stream, "--checkpoint", export, "--output", clip, "--reference", clip])
    assert "is the input" in err
    one_line_error(capsys, ["decode", stream, "--checkpoint", export, "--output", stream])
    assert clip.read_bytes() == original and stream.read_bytes() == coded
    err = one_line_error(capsys, ["data", "pack", "yuv", clip, "--size", f"{WIDTH}x{HEIGHT}", "--out", clip])
    assert "is the input" in err and clip.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.yuv", "s.nvc", "same-inode.yuv"]


def _edit_floats(path, count=16):
    """Add 1 to ``count`` float32 values in the middle of the largest tensor of a safetensors file."""
    raw = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    name = max((k for k in header if k != "__metadata__" and header[k]["dtype"] == "F32"),
               key=lambda k: header[k]["data_offsets"][1] - header[k]["data_offsets"][0])
    start, end = header[name]["data_offsets"]
    at = 8 + n + (start + end) // 2 // 4 * 4
    values = struct.unpack(f"<{count}f", raw[at : at + 4 * count])
    raw[at : at + 4 * count] = struct.pack(f"<{count}f", *(v + 1.0 for v in values))
    path.write_bytes(bytes(raw))


# case 4: exports are not checked against their own fingerprint; RUN_DIR picks the newest export by mtime
def test_an_edited_export_is_refused(tmp_path, capsys, export, clip):
    stream = tmp_path / "s.nvc"
    assert main(["encode", "--checkpoint", str(export), "--input", str(clip), "--size", f"{WIDTH}x{HEIGHT}",
                 "--output", str(stream), "--frames", "1"]) == 0
    capsys.readouterr()
    edited = tmp_path / "edited.safetensors"
    shutil.copy(export, edited)
    _edit_floats(edited)
    with pytest.raises(WeightsError, match="do not match the fingerprint"):
        load_export(edited)
    err = one_line_error(capsys, ["decode", stream, "--checkpoint", edited, "--output", tmp_path / "rec.yuv"])
    assert str(edited) in err and "damaged or edited" in err
    assert not (tmp_path / "rec.yuv").exists()


def test_a_run_directory_resolves_to_the_furthest_stage_not_the_newest_file(tmp_path, export):
    exports = tmp_path / "run" / "exports"
    exports.mkdir(parents=True)
    for name in ("00-intra", "01-inter", "02-recon"):
        shutil.copy(export, exports / f"{name}.safetensors")
    os.utime(exports / "00-intra.safetensors", (2e9, 2e9))  # stage 0 re-run: the newest file
    assert resolve_weights(tmp_path / "run") == exports / "02-recon.safetensors"


# case 6: lr .inf accepted
@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf"])
def test_a_non_finite_learning_rate_is_refused_when_the_schedule_is_read(tmp_path, value):
    path = tmp_path / "s.yaml"
    path.write_text(f"preset: tiny\nstages:\n  - {{name: intra, frames: 1, parts: Intra, loss: intra, lr: {value}, "
                    "steps: 3}\n")
    with pytest.raises(ConfigError, match=r"stage 0 \('intra'\): key 'lr'") as info:
        load_schedule(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    proc = subprocess.run([sys.executable, "-m", "nvc1b", "train", str(path), "--run-dir", str(tmp_path / "run")],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "key 'lr'" in proc.stderr
    assert not (tmp_path / "run").exists()


def test_non_finite_weights_are_never_exported(tmp_path, export):
    model = load_export(export).model
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(WeightsError, match="NaN or infinite"):
        save_model(model, tmp_path / "bad.safetensors")
    assert not list(tmp_path.iterdir())


# case 7: the other gaps, each a one-line error
def test_a_dataset_or_sequence_name_cannot_leave_the_results_folder(tmp_path):
    out = tmp_path / "results"
    with pytest.raises(OutputError, match="outside the output folder"):
        DatasetFolder(out, "rgb", "../../escape")
    folder = DatasetFolder(out, "rgb", "mini")
    with pytest.raises(OutputError, match="sequence name '../../../x'"):
        folder.point_path("../../../x", "q0")
    assert not out.exists()


def test_eval_refuses_a_dataset_named_outside_out(tmp_path, capsys, export):
    from evalhelpers import write_test_set

    dataset = write_test_set(tmp_path / "set")
    dataset.write_text(dataset.read_text().replace("name: mini", "name: ../../escape"))
    err = one_line_error(capsys, ["eval", "--checkpoint", export, "--dataset", dataset, "--out", tmp_path / "out",
                                  "--q-indexes", "0", "--no-ms-ssim", "--quiet"])
    assert "outside the output folder" in err
    assert not (tmp_path / "escape").exists() and not (tmp_path.parent / "escape").exists()


@pytest.mark.parametrize("key, value", [("max_steps", 0), ("max_steps", -5), ("checkpoint_every", 0),
                                        ("checkpoint_every", -1)])
def test_step_counts_below_one_are_refused(tmp_path, capsys, key, value):
    with pytest.raises(ConfigError, match=f"--{key.replace('_', '-')}: must be a whole number of at least 1"):
        RunOptions(tmp_path, **{key: value})
    err = one_line_error(capsys, ["train", ROOT / "stages" / "demo.yaml", "--run-dir", tmp_path / "run",
                                  f"--{key.replace('_', '-')}", value])
    assert "at least 1" in err and not (tmp_path / "run").exists()


def test_empty_frame_weights_binary_yaml_and_incomplete_presets_name_file_and_key(tmp_path):
    schedule = tmp_path / "s.yaml"
    schedule.write_text("preset: tiny\nframe_weights: []\nstages:\n"
                        "  - {name: intra, frames: 1, parts: Intra, loss: intra, lr: 1.0e-3, steps: 3}\n")
    with pytest.raises(ConfigError, match="key 'frame_weights'"):
        load_schedule(schedule)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"preset: tiny\n\xff\xfe\x00\x81garbage")
    for load in (load_schedule, load_preset):
        with pytest.raises(ConfigError, match="not UTF-8 text") as info:
            load(binary)
        assert str(binary) in str(info.value)
    partial = tmp_path / "partial.yaml"
    partial.write_text("name: partial\nmotion_codec: {channels: 16}\n")
    with pytest.raises(ConfigError, match="key 'interface': missing section") as info:
        load_preset(partial)
    assert str(partial) in str(info.value) and "\n" not in str(info.value)


@contextmanager
def small_tmpfs(path, size):
    """A tmpfs of ``size`` mounted at ``path`` for the test (skipped where mounting is not allowed)."""
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip() or proc.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_is_one_line_naming_path_and_free_space_with_nothing_left(tmp_path, export):
    with small_tmpfs(tmp_path / "small", "256k") as disk:
        (disk / "old.nvc").write_bytes(b"old")
        with pytest.raises(DiskFullError, match=r"old.nvc: no space left on the disk \(\d+ bytes free\)"):
            write_bytes_atomic(disk / "old.nvc", os.urandom(1 << 20))
        assert (disk / "old.nvc").read_bytes() == b"old" and sorted(os.listdir(disk)) == ["old.nvc"]
        with pytest.raises(DiskFullError, match="no space left") as info:
            save_model(load_export(export).model, disk / "exports" / "tiny.safetensors")
        assert "\n" not in str(info.value) and not list((disk / "exports").iterdir())
