"""The performance benchmarks run on CPU for `tiny` and report every field; FLOPs are counted correctly."""

import json

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
