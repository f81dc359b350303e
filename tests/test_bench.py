"""The performance benchmarks run on CPU for `tiny` and report every field; FLOPs are counted correctly."""

import json
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from nvc1b.cli import main
from nvc1b.perf.train_bench import TrainSetup, benchmark_training


def test_flop_count_of_one_conv_layer():
    conv = torch.nn.Conv2d(16, 32, 3, padding=1, stride=2)
    x = torch.randn(2, 16, 40, 24, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        conv(x)
    # 2 FLOPs per multiply-add: B × C_out × H_out × W_out × C_in × k²
    assert counter.get_total_flops() == 2 * 2 * 32 * 20 * 12 * 16 * 9
    with FlopCounterMode(display=False) as counter:
        conv(x).sum().backward()
    assert counter.get_total_flops() == 3 * 2 * 2 * 32 * 20 * 12 * 16 * 9  # forward + grad input + grad weight


def test_training_benchmark_reports_every_field_and_the_checkpointing_cost():
    setup = TrainSetup("tiny", frames=2, crop=32, micro_batch=1)
    plain = benchmark_training(setup, torch.device("cpu"), steps=1, warmup=0)
    ckpt = benchmark_training(TrainSetup("tiny", 2, 32, 1, checkpoint_frames=True), torch.device("cpu"), 1, 0)
    for r in (plain, ckpt):
        assert r.step_s > 0 and r.frames_per_s > 0 and r.peak_memory_gb > 0 and r.mfu is not None
    # per-frame checkpointing recomputes each P-frame's forward in backward: more FLOPs, same model
    assert ckpt.tflops_per_step > plain.tflops_per_step


def test_bench_train_cli_prints_the_table_with_a_baseline(capsys):
    assert main(["bench", "train", "--preset", "tiny", "--frames", "2", "--crop", "32", "--steps", "1",
                 "--warmup", "0", "--channels-last", "--baseline", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["setup"]["channels_last"] for r in rows] == [True, False]
    assert {"step_s", "frames_per_s", "peak_memory_gb", "tflops_per_step", "achieved_tflops", "mfu"} <= set(rows[0])


@pytest.mark.slow
def test_bench_codec_cli_splits_network_and_entropy_time(capsys):
    assert main(["bench", "codec", "--preset", "tiny", "--size", "64x48", "--frames", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["frame"] for r in rows] == ["I", "P"]
    for r in rows:
        assert r["encode_s"] >= r["encode_entropy_s"] > 0 and r["decode_s"] >= r["decode_entropy_s"] > 0


def _bench_file(path, frames, step_s, micro_batch=2, preset="nvc1b"):
    path.write_text(json.dumps([{"setup": {"preset": preset, "frames": frames, "micro_batch": micro_batch},
                                 "step_s": step_s, "device": "cuda:0"}]))
    return path


def test_projection_scales_measured_throughput_to_every_stage(tmp_path, capsys):
    from nvc1b.perf.projection import project_schedule, read_throughputs
    from nvc1b.train.schedule import Schedule

    schedule = Schedule.model_validate({"preset": "tiny", "global_batch": 4, "stages": [
        {"name": "a", "frames": 4, "parts": "All", "loss": "all_T", "lr": 1e-4, "epochs": 2},
        {"name": "b", "frames": 6, "parts": "All", "loss": "all_T", "lr": 1e-4, "steps": 10},
    ]})
    # measured: 2 s per step of 2 clips at T=2 (1 s/clip), 4 s per step of 2 clips at T=6 (2 s/clip)
    throughputs = read_throughputs([_bench_file(tmp_path / "t2.json", 2, 2.0), _bench_file(tmp_path / "t6.json", 6, 4.0)])
    a, b = project_schedule(schedule, throughputs, gpus=4, clips_per_epoch=100, efficiency=0.5)
    # a: 200 clips; T=4 is as near to 2 as to 6, the longer wins: 2 s/clip × 4/6 → 200 × 4/3 / (4 × 0.5) s
    assert a.measured_at == 6 and a.hours * 3600 == pytest.approx(200 * 2 * 4 / 6 / 2)
    assert b.clips == 40 and b.hours * 3600 == pytest.approx(40 * 2 / 2)

    root = Path(__file__).resolve().parents[1]
    assert main(["bench", "project", str(root / "stages/nvc1b_rgb.yaml"), "--cluster", str(root / "cluster/a40x32.yaml"),
                 "--bench", str(tmp_path / "t2.json"), str(tmp_path / "t6.json")]) == 0
    out = capsys.readouterr().out
    assert "t21-all" in out and "32 GPUs" in out and "85 days" in out


def test_projection_names_a_bad_benchmark_file(tmp_path):
    from nvc1b.errors import ConfigError
    from nvc1b.perf.projection import read_throughputs

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"setup": {"frames": 2}}]))
    with pytest.raises(ConfigError, match="bad.json: row 0 lacks"):
        read_throughputs([bad])


def test_projection_counts_steps_and_communication(tmp_path):
    from nvc1b.config.model import load_preset
    from nvc1b.model.counting import count_parameters
    from nvc1b.perf.projection import project_schedule, read_throughputs
    from nvc1b.train.schedule import Schedule

    schedule = Schedule.model_validate({"preset": "tiny", "global_batch": 4, "stages": [
        {"name": "recd", "frames": 3, "parts": "Recon", "loss": "recD", "lr": 1e-4, "epochs": 1},
        {"name": "all", "frames": 3, "parts": "All", "loss": "all_T", "lr": 1e-4, "epochs": 1},
    ]})
    throughputs = read_throughputs([_bench_file(tmp_path / "t2.json", 2, 2.0)])
    plain = project_schedule(schedule, throughputs, gpus=4, clips_per_epoch=100, efficiency=1.0)
    assert [s.steps for s in plain] == [50, 25] and all(s.comm_hours == 0 for s in plain)  # per-frame: 2 per clip
    slow = project_schedule(schedule, throughputs, gpus=4, clips_per_epoch=100, efficiency=1.0, interconnect_gbps=1e-3)
    count = count_parameters(load_preset("tiny"))
    recon = sum(count.parts[p] for p in ("temporal_context_mining", "contextual_codec", "contextual_entropy"))
    # a slow link: 3/4 of (bf16 gradients + fp32 weights) per step, less what hides under the backward (2/3 of
    # the compute: 100 clips x 1 s/clip x 3/2 frames over 4 GPUs = 37.5 s)
    per_step = 0.75 * recon * (2 + 4) * 8 / 1e6
    assert slow[0].comm_hours * 3600 == pytest.approx(50 * per_step - 2 / 3 * 37.5, rel=1e-6)
    assert slow[0].compute_hours == plain[0].compute_hours and slow[0].hours > plain[0].hours
    assert slow[1].comm_hours * 3600 == pytest.approx(25 * 0.75 * count.total * 6 * 8 / 1e6 - 25, rel=1e-6)
