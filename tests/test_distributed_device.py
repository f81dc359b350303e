"""Which device a trainer process takes: the GPU when there is one, the CPU when NVC1B_DEVICE=cpu (the suite's
setting), and never a GPU index beyond the GPUs present."""

import pytest
import torch

from nvc1b.errors import ConfigError
from nvc1b.train import distributed


def test_cpu_is_forced_even_where_cuda_is_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("NVC1B_DEVICE", "cpu")
    assert distributed.training_device() == "cpu"
    monkeypatch.delenv("NVC1B_DEVICE")
    assert distributed.training_device() == "cuda"


def test_bad_device_settings_are_one_line_errors(monkeypatch):
    monkeypatch.setenv("NVC1B_DEVICE", "tpu")
    with pytest.raises(ConfigError, match="NVC1B_DEVICE='tpu'"):
        distributed.training_device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("NVC1B_DEVICE", "cuda")
    with pytest.raises(ConfigError, match="no CUDA device"):
        distributed.training_device()


def test_a_local_rank_beyond_the_gpus_stops_before_set_device(monkeypatch):
    monkeypatch.delenv("NVC1B_DEVICE")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: pytest.fail(f"set_device({i}) called"))
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(ConfigError, match="local rank 1 but this node has 1 GPU"):
        distributed.setup_distributed()
