"""The ``nvc1b data`` and ``nvc1b bench data`` commands: thin shells over the library, one-line errors."""

import numpy as np
from datahelpers import vimeo_tree

from nvc1b.cli.main import main
from nvc1b.data import video
from nvc1b.data.manifest import read_manifest
from nvc1b.data.shards import iter_clips


def test_pack_yuv_and_verify(tmp_path, capsys):
    z = np.arange(10 * 8 * 12, dtype=np.uint8).reshape(10, 8, 12)
    video.write_yuv420(tmp_path / "a.yuv", z, z[:, ::2, ::2], z[:, 1::2, 1::2])
    out = tmp_path / "out"
    assert main(["data", "pack", "yuv", str(tmp_path / "a.yuv"), "--size", "12x8", "--clip", "5", "--stride", "5",
                 "--out", str(out), "--jobs", "1"]) == 0
    assert "2 clips in 1 shards" in capsys.readouterr().out
    assert [k for k, _, _ in iter_clips(out)] == ["a_00000", "a_00005"]
    assert main(["data", "verify", str(out)]) == 0
    assert "ok: 1 shards, 2 clips" in capsys.readouterr().out
    shard = out / "shard-000000.tar"
    data = bytearray(shard.read_bytes())
    data[2000] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert main(["data", "verify", str(out / "manifest.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nvc1b: error: 1 shard(s) differ from the manifest; first:") and "checksum" in err
    assert err.count("\n") == 1


def test_pack_vimeo_and_frames_and_errors(tmp_path, capsys):
    root, _ = vimeo_tree(tmp_path / "vimeo", sequences=1, clips_each=3)
    (tmp_path / "list.txt").write_text("00001/0002\n")
    assert main(["data", "pack", "vimeo", str(root), "--list", str(tmp_path / "list.txt"), "--out", str(tmp_path / "v"),
                 "--png-level", "3"]) == 0
    m = read_manifest(tmp_path / "v")
    assert m.clips == 1 and m.png_level == 3 and "--list" in m.source
    folder = root / "sequences" / "00001" / "0001"
    assert main(["data", "pack", "frames", str(folder), "--clip", "3", "--stride", "2", "--out", str(tmp_path / "f"),
                 "--shard-size", "2"]) == 0
    assert [s.clips for s in read_manifest(tmp_path / "f").shards] == [2, 1]
    capsys.readouterr()
    assert main(["data", "pack", "vimeo", str(root), "--out", str(tmp_path / "v2")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"nvc1b: error: {root}: no sep_trainlist.txt and no --list") and err.count("\n") == 1
    assert main(["data", "pack", "vimeo", str(root), "--all", "--out", str(tmp_path / "v2")]) == 0
    assert read_manifest(tmp_path / "v2").clips == 3
    capsys.readouterr()
    assert main(["data", "pack", "yuv", str(tmp_path / "none.yuv"), "--size", "12x8", "--out", str(tmp_path / "y")]) == 1
    assert capsys.readouterr().err == f"nvc1b: error: {tmp_path / 'none.yuv'}: YUV file not found\n"
    assert main(["data", "pack", "yuv", str(tmp_path / "none.yuv"), "--size", "12by8", "--out", str(tmp_path / "y")]) == 1
    assert "WIDTHxHEIGHT" in capsys.readouterr().err


def test_bench_data_prints_the_side_by_side_table(tmp_path, capsys):
    assert main(["bench", "data", "--clips", "3", "--batches", "2", "--workers", "1", "--micro-batch", "2",
                 "--crop", "64", "--frames", "3", "--work", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("data loading, 64x64x3 crops")
    assert "shards clips/s" in out[1] and "png-folder clips/s" in out[1] and "ratio" in out[1]
    cells = out[2].split("|")
    assert cells[0].strip() == "1" and cells[-1].strip().endswith("x") and float(cells[1].split()[0]) > 0
    assert list(tmp_path.iterdir()) == []  # the temporary data is gone
