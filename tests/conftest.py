import pytest
import torch

from nvc1b.config.model import load_preset
from nvc1b.model import VideoCodec


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def tiny_config():
    return load_preset("tiny")


@pytest.fixture
def tiny_model(tiny_config):
    torch.manual_seed(0)
    return VideoCodec(tiny_config)
