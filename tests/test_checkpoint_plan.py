"""Per-frame checkpointing 'auto': the memory model turns it on for a stage only when its clips do not fit."""

import torch

from nvc1b.cluster.profile import ClusterProfile
from nvc1b.config.model import load_preset
from nvc1b.perf.checkpoint_plan import choose_frames_checkpointing, plan_frames_checkpointing, stage_frames_checkpointing
from nvc1b.perf.memory import GIB, config_memory
from nvc1b.train.schedule import Schedule

CROP = 64


def test_auto_turns_checkpointing_on_only_when_the_clip_does_not_fit():
    tiny = load_preset("tiny")
    need = config_memory(tiny, 4, 1, CROP, "fp32", False, 2, 1).total / GIB
    roomy = choose_frames_checkpointing(tiny, 4, 1, CROP, "fp32", 2, 1, gpu_memory_gb=need * 2)
    tight = choose_frames_checkpointing(tiny, 4, 1, CROP, "fp32", 2, 1, gpu_memory_gb=need / 2)
    assert not roomy.on and "which fits" in roomy.reason and f"{need:.1f} GiB" in roomy.reason
    assert tight.on and "does not fit" in tight.reason
    two = choose_frames_checkpointing(tiny, 2, 1, CROP, "fp32", 2, 1, gpu_memory_gb=need / 100)
    assert not two.on and "one P-frame" in two.reason  # checkpointing the only P-frame saves nothing


def test_plan_per_stage_and_profile_and_the_cpu_rule():
    schedule = Schedule.model_validate({"preset": "tiny", "crop": CROP, "precision": "fp32", "stages": [
        {"name": "intra", "frames": 1, "parts": "Intra", "loss": "intra", "lr": 1e-4, "steps": 1},
        {"name": "short", "frames": 2, "parts": "Recon", "loss": "recD", "lr": 1e-4, "steps": 1},
        {"name": "long", "frames": 6, "parts": "All", "loss": "all_T", "lr": 1e-4, "steps": 1},
        {"name": "forced", "frames": 6, "parts": "All", "loss": "all_T", "lr": 1e-4, "steps": 1,
         "overrides": {"activation_checkpointing": {"frames": False}}},
    ]})
    small = ClusterProfile(name="small", gpus_per_node=1, gpu_memory_gb=0.05, micro_batch=1)
    plan = plan_frames_checkpointing(schedule, small)
    assert list(plan) == ["short", "long", "forced"]
    assert [c.on for c in plan.values()] == [False, True, False] and plan["forced"].reason == "set in the schedule"
    big = plan_frames_checkpointing(schedule, ClusterProfile(name="big", gpus_per_node=1, gpu_memory_gb=80))
    assert not big["long"].on
    cpu = stage_frames_checkpointing(schedule, schedule.stages[2], load_preset("tiny"), torch.device("cpu"), 1)
    assert not cpu.on and "CPU run" in cpu.describe()
