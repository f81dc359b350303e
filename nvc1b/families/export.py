"""Exports of any family: the same ``.safetensors`` format (``nvc1b.model.export``), the embedded preset naming its
family. Writing is family-blind; reading rebuilds the model of the family the preset names."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..model.export import ModelExport, read_metadata, resolve_weights, restore_export, save_model
from . import build_model, config_from_json

__all__ = ["load_export", "load_model", "save_model"]


def load_model(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the model stored in an export file (or the newest export of a run directory), of any family."""
    return load_export(path, device).model


def load_export(path: str | Path, device: str | torch.device = "cpu") -> ModelExport:
    """The model of an export with its fingerprint and coding tables; NVC exports load as before."""
    path = resolve_weights(path)
    meta = read_metadata(path)
    family = json.loads(meta["preset"]).get("family", "nvc")
    if family == "nvc":
        from ..model.export import load_export as load_nvc

        return load_nvc(path, device)
    config = config_from_json(meta["preset"], f"{path} (embedded preset)")
    return restore_export(path, meta, build_model(config), config.name, device)
