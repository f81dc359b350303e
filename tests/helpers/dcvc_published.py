"""The fixtures' seeded reference weights as checkpoint files in the published formats (DCVC-SDD's P-frame
``.pth.tar``: the bare state dict; DCVC-DC's intra one wrapped in 'state_dict' with DataParallel's prefix, which
the reference loader accepts too), checked against the manifest's checksums."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from helpers.dcvc_checkpoints import DC_INTRA_INVENTORY, FIXTURES, SDD_PFRAME_INVENTORY, write_reference_checkpoint
from helpers.dcvc_weights import build_state_dict, load_inventory, state_dict_checksum

INVENTORIES = {"sdd_pframe": SDD_PFRAME_INVENTORY, "dc_intra": DC_INTRA_INVENTORY}


def manifest() -> dict:
    return json.loads((FIXTURES / "manifest.json").read_text())


def _checked(name: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if state_dict_checksum(state) != manifest()["weights"][name]["checksum"]:
        raise AssertionError(f"rebuilt {name} weights do not match the fixtures' checksum")
    return state


def reference_state(name: str) -> dict[str, torch.Tensor]:
    """The seeded reference-keyed state dict of 'sdd_pframe' or 'dc_intra'."""
    return _checked(name, build_state_dict(load_inventory(INVENTORIES[name])))


def write_published(folder: Path) -> tuple[Path, Path]:
    """(P-frame checkpoint, intra checkpoint) files in ``folder``."""
    p_path, i_path = folder / "dcvc_sdd_pframe.pth.tar", folder / "dcvc_dc_intra.pth.tar"
    _checked("sdd_pframe", write_reference_checkpoint(p_path, load_inventory(SDD_PFRAME_INVENTORY)))
    _checked("dc_intra", write_reference_checkpoint(i_path, load_inventory(DC_INTRA_INVENTORY), wrapper="state_dict",
                                                    module_prefix=True))
    return p_path, i_path
