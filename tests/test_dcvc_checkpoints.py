"""Reading DCVC-SDD / DCVC-DC checkpoint files (nvc1b.importers.read_dcvc_checkpoint) in the formats the
reference test scripts load, and one-line errors naming the file for everything else."""

import argparse
import json

import pytest
import torch
from helpers.dcvc_checkpoints import DC_INTRA_INVENTORY, SDD_PFRAME_INVENTORY, write_reference_checkpoint
from safetensors.torch import save_file

from nvc1b.errors import WeightsError
from nvc1b.importers import read_dcvc_checkpoint


def _small(inventory_path, count=24):
    """The first ``count`` tensors of a reference inventory: the formats, not the size, are under test."""
    inv = json.loads(inventory_path.read_text())
    inv["tensors"] = dict(list(inv["tensors"].items())[:count])
    return inv


def _same(a, b, ordered=True):
    assert list(a) == list(b) if ordered else sorted(a) == sorted(b)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("wrapper", [None, "state_dict", "net"])
@pytest.mark.parametrize("module_prefix", [False, True])
def test_reference_formats_read_back_exactly(tmp_path, wrapper, module_prefix):
    path = tmp_path / "cvpr2023_image_psnr.pth.tar"
    expected = write_reference_checkpoint(path, _small(DC_INTRA_INVENTORY), wrapper=wrapper,
                                          module_prefix=module_prefix)
    _same(read_dcvc_checkpoint(path), expected)


def test_nested_wrappers_and_safetensors(tmp_path):
    expected = write_reference_checkpoint(tmp_path / "p.pth", _small(SDD_PFRAME_INVENTORY))
    torch.save({"state_dict": {"net": {"module." + k: v for k, v in expected.items()}}, "epoch": 7},
               tmp_path / "nested.pth.tar")
    _same(read_dcvc_checkpoint(tmp_path / "nested.pth.tar"), expected)
    save_file(expected, str(tmp_path / "p.safetensors"))
    _same(read_dcvc_checkpoint(tmp_path / "p.safetensors"), expected, ordered=False)  # safetensors sorts keys


def test_training_checkpoint_needs_trust(tmp_path):
    expected = write_reference_checkpoint(tmp_path / "plain.pth", _small(SDD_PFRAME_INVENTORY))
    path = tmp_path / "train.pth.tar"
    torch.save({"state_dict": expected, "args": argparse.Namespace(lr=1e-4)}, path)
    with pytest.raises(WeightsError, match="trust") as err:
        read_dcvc_checkpoint(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    _same(read_dcvc_checkpoint(path, trust_pickle=True), expected)


def _bad_files(tmp_path):
    t = torch.zeros(2)
    (tmp_path / "garbage.pth.tar").write_bytes(b"\x00not a checkpoint" * 50)
    (tmp_path / "truncated.pth.tar").write_bytes(b"")
    torch.save([t, t], tmp_path / "list.pth")
    torch.save({"state_dict": {"a.weight": t, "epoch": 3}}, tmp_path / "scalar.pth")
    torch.save({}, tmp_path / "empty.pth")
    torch.save({1: t}, tmp_path / "intkey.pth")
    torch.save({"module.a": t, "a": t}, tmp_path / "twice.pth")
    (tmp_path / "bad.safetensors").write_bytes(b"{}")
    return {
        "missing.pth.tar": "not found", "garbage.pth.tar": "not a torch checkpoint",
        "truncated.pth.tar": "empty or truncated",
        "list.pth": "holds list", "scalar.pth": "'epoch' holds int", "empty.pth": "empty",
        "intkey.pth": "not a name", "twice.pth": "with and without", "bad.safetensors": "cannot read",
    }


def test_bad_files_are_one_line_errors_naming_the_file(tmp_path):
    for name, expected in _bad_files(tmp_path).items():
        path = tmp_path / name
        with pytest.raises(WeightsError) as err:
            read_dcvc_checkpoint(path)
        message = str(err.value)
        assert str(path) in message and expected in message and "\n" not in message, message
        assert err.value.exit_code != 0
