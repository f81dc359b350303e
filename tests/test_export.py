import pytest
import torch

from nvc1b.errors import WeightsError
from nvc1b.model.export import load_model, save_model, weights_fingerprint


def test_export_round_trip_rebuilds_the_same_model(tmp_path, tiny_model):
    path = save_model(tiny_model, tmp_path / "run" / "exports" / "stage-01.safetensors")
    again = load_model(tmp_path / "run")  # a run directory resolves to its newest export
    assert again.config == tiny_model.config
    for (k, a), (_, b) in zip(tiny_model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k
    assert weights_fingerprint(again) == weights_fingerprint(tiny_model)
    assert not list(path.parent.glob(".*tmp*"))


def test_export_errors(tmp_path):
    with pytest.raises(WeightsError, match="no exported weights"):
        load_model(tmp_path)
    (tmp_path / "x.safetensors").write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="x.safetensors"):
        load_model(tmp_path / "x.safetensors")
