"""Checkpoint files in the published DCVC-SDD / DCVC-DC format, from the fixture inventories' seeded weights (for
testing ``nvc1b import`` end to end without the published files)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch

from helpers.dcvc_weights import build_state_dict

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dcvc"
SDD_PFRAME_INVENTORY = FIXTURES / "sdd_pframe_inventory.json"
DC_INTRA_INVENTORY = FIXTURES / "dc_intra_inventory.json"


def write_reference_checkpoint(path: str | Path, inventory: Mapping, *, wrapper: str | None = None,
                               module_prefix: bool = False, seed: int | None = None) -> dict[str, torch.Tensor]:
    """``torch.save`` the inventory's weights as the reference would (an OrderedDict state dict, optionally under
    ``{"state_dict": …}`` or ``{"net": …}`` and with DataParallel's ``module.`` prefix); returns the weights as
    the reference model's state dict (no prefix), i.e. what ``read_dcvc_checkpoint`` must give back."""
    state = build_state_dict(inventory, seed=seed)
    saved = OrderedDict((("module." if module_prefix else "") + k, v) for k, v in state.items())
    torch.save(saved if wrapper is None else {wrapper: saved}, str(path))
    return state
