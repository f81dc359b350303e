import pytest
import torch

from nvc1b.errors import WeightsError
from nvc1b.model.export import (
    TABLE_MARKER,
    coding_tables,
    load_export,
    load_model,
    read_metadata,
    save_model,
    weights_fingerprint,
)


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


def test_export_stores_coding_tables_and_fingerprint(tmp_path, tiny_model):
    from safetensors import safe_open

    path = save_model(tiny_model, tmp_path / "w.safetensors")
    assert read_metadata(path)["fingerprint"] == weights_fingerprint(tiny_model)
    with safe_open(str(path), framework="pt") as f:
        names = {k.split(TABLE_MARKER)[0] for k in f.keys() if TABLE_MARKER in k}
    assert names == {"intra.hyperprior.z_prior", "motion_entropy.hyperprior.z_prior", "contextual_entropy.hyperprior.z_prior"}
    export = load_export(path)
    fresh = coding_tables(tiny_model)
    for name, table in export.tables.items():
        assert all((a == b).all() for a, b in zip(table.frequencies, fresh[name].frequencies))
    assert export.fingerprint == weights_fingerprint(tiny_model)


def test_export_without_coding_tables_still_loads(tmp_path, tiny_model):
    from safetensors.torch import load_file, save_file

    path = save_model(tiny_model, tmp_path / "w.safetensors")
    meta = {k: v for k, v in read_metadata(path).items() if k != "fingerprint"}
    old = {k: v for k, v in load_file(str(path)).items() if TABLE_MARKER not in k}
    save_file(old, str(tmp_path / "old.safetensors"), metadata=meta)
    export = load_export(tmp_path / "old.safetensors")
    assert len(export.tables) == 3 and export.fingerprint == weights_fingerprint(tiny_model)
