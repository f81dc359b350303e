"""The fixtures' seeded reference weights written as checkpoint files in the published formats (DCVC-SDD's P-frame
``.pth.tar`` holds the bare state dict; DCVC-DC's intra one is wrapped in 'state_dict' here, which the reference
loader accepts too)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from helpers.dcvc_weights import build_state_dict, load_inventory, state_dict_checksum

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "dcvc"
INVENTORIES = {"sdd_pframe": "sdd_pframe_inventory.json", "dc_intra": "dc_intra_inventory.json"}


def manifest() -> dict:
    return json.loads((FIXTURES / "manifest.json").read_text())


def reference_state(name: str) -> dict[str, torch.Tensor]:
    """The seeded reference-keyed state dict of 'sdd_pframe' or 'dc_intra', checked against the manifest."""
    spec = manifest()["weights"][name]
    state = build_state_dict(load_inventory(FIXTURES / INVENTORIES[name]), spec["seed"], spec["gain"], spec["q_basic"])
    if state_dict_checksum(state) != spec["checksum"]:
        raise AssertionError(f"rebuilt {name} weights do not match the fixtures' checksum")
    return state


def write_published(folder: Path) -> tuple[Path, Path]:
    """(P-frame checkpoint, intra checkpoint) files in ``folder``."""
    p_path, i_path = folder / "dcvc_sdd_pframe.pth.tar", folder / "dcvc_dc_intra.pth.tar"
    torch.save(reference_state("sdd_pframe"), p_path)
    torch.save({"state_dict": reference_state("dc_intra")}, i_path)
    return p_path, i_path
