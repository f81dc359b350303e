"""Exports of any family: the same ``.safetensors`` format (``nvc1b.model.export``), the embedded preset naming its
family. Writing is family-blind; reading rebuilds the model of the family the preset names."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from ..errors import WeightsError
from ..model.discrete import FactorizedTable
from ..model.export import (
    TABLE_MARKER,
    ModelExport,
    coding_tables,
    read_metadata,
    resolve_weights,
    save_model,
    weights_fingerprint,
)
from . import build_model, config_from_json

log = logging.getLogger(__name__)

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
    from safetensors.torch import load_file

    config = config_from_json(meta["preset"], f"{path} (embedded preset)")
    model = build_model(config)
    state = load_file(str(path))
    packed: dict[str, dict[str, torch.Tensor]] = {}
    for key in [k for k in state if TABLE_MARKER in k]:
        name, field = key.split(TABLE_MARKER)
        packed.setdefault(name, {})[field] = state.pop(key)
    missing, unexpected = set(model.state_dict()) - set(state), set(state) - set(model.state_dict())
    if missing or unexpected:
        key = min(missing or unexpected)
        raise WeightsError(f"{path}: tensor '{key}' is {'missing' if missing else 'unexpected'} for preset {config.name}")
    model.load_state_dict(state)
    try:
        tables = {name: FactorizedTable.unpack(t) for name, t in packed.items()} if packed else coding_tables(model)
    except (KeyError, ValueError) as exc:
        raise WeightsError(f"{path}: coding tables are damaged ({exc})") from None
    fingerprint = weights_fingerprint(model)
    if meta.get("fingerprint") != fingerprint:
        raise WeightsError(
            f"{path}: the weights do not match the fingerprint stored with them: the file was damaged or edited "
            "after export; re-export it from its checkpoint"
        )
    return ModelExport(model=model.to(device), fingerprint=fingerprint, tables=tables, path=path)
