"""Exported weights: one ``.safetensors`` file holding the fp32 state dict, the integer coding tables of the
factorized priors (``<prior>.coding_table.*`` tensors) and, in its metadata, the preset and the weights fingerprint, so
a model can be rebuilt and can code bitstreams from the file alone. Written atomically.

The coding tables are computed once here, from the weights, so that every device that loads the export codes
with the very same integers (``nvc1b.model.discrete``)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..config.loading import validate
from ..config.model import ModelConfig
from ..errors import WeightsError
from ..files import disk_full_reported
from .codec import VideoCodec
from .discrete import FactorizedTable, factorized_table
from .likelihood import FactorizedPrior

log = logging.getLogger(__name__)

FORMAT = "nvc1b-model/2"
"""Version 2: the model is DCVC-SDD's / DCVC-DC's function (issue 14); version-1 exports hold another function
(offset wiring, likelihood floors, rate parameters, intra coder) and are refused rather than silently changed."""
EXPORT_DIR = "exports"
"""Sub-directory of a run directory holding its exported weights."""
TABLE_MARKER = ".coding_table."
"""Coding-table tensors in an export are ``<prior module name>.coding_table.{lows,lengths,frequencies}``: named
after their prior so they sit with the part they belong to, and told apart from weights by this marker."""


@dataclass
class ModelExport:
    """A model rebuilt from an export, with what the bitstream coder needs besides the weights."""

    model: VideoCodec
    fingerprint: str
    """``weights_fingerprint`` of the weights (hex SHA-256), as stored at export time."""
    tables: dict[str, FactorizedTable]
    """Integer tables of each factorized prior, by module name."""
    path: Path


def coding_tables(model: VideoCodec) -> dict[str, FactorizedTable]:
    """Integer tables of every factorized prior of ``model`` (float64 on the CPU), by module name."""
    return {name: factorized_table(m) for name, m in model.named_modules() if isinstance(m, FactorizedPrior)}


def save_model(model: VideoCodec, path: str | Path, extra: dict[str, str] | None = None) -> Path:
    """Write ``model``'s weights (fp32) and preset to ``path``; the file appears only once complete. Non-finite
    weights are refused, and a full disk is a one-line error that leaves ``path`` as it was."""
    from safetensors.torch import save_file

    path = Path(path)
    bad = next((k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()),
               None)
    if bad is not None:
        raise WeightsError(f"{path}: not written: tensor '{bad}' holds NaN or infinite values")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    for name, table in coding_tables(model).items():
        state.update({f"{name}{TABLE_MARKER}{k}": v for k, v in table.pack().items()})
    metadata = {
        "format": FORMAT, "preset": json.dumps(model.config.model_dump(mode="json")),
        "fingerprint": weights_fingerprint(model), **(extra or {}),
    }
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with disk_full_reported(path, tmp):
        save_file(state, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # noqa: BLE001 - unreadable file
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None
    if meta.get("format") == "nvc1b-model/1":
        raise WeightsError(f"{path}: an nvc1b-model/1 export (before the model became DCVC-SDD's function); this "
                           f"build reads {FORMAT} only: retrain, or import the published weights with nvc1b import")
    if meta.get("format") != FORMAT:
        raise WeightsError(f"{path}: not an nvc1b model export (format {meta.get('format')!r}, expected {FORMAT!r})")
    return meta


def load_model(path: str | Path, device: str | torch.device = "cpu") -> VideoCodec:
    """Rebuild the model stored in an exported ``.safetensors`` file (or the newest export of a run directory)."""
    return load_export(path, device).model


def load_export(path: str | Path, device: str | torch.device = "cpu") -> ModelExport:
    """Rebuild the model of an export (file or run directory) with its fingerprint and coding tables."""
    path = resolve_weights(path)
    meta = read_metadata(path)
    config = validate(ModelConfig, json.loads(meta["preset"]), f"{path} (embedded preset)")
    return restore_export(path, meta, VideoCodec(config), config.name, device)


def restore_export(
    path: Path, meta: dict[str, str], model: nn.Module, preset_name: str, device: str | torch.device = "cpu"
) -> ModelExport:
    """Load an export's tensors into ``model`` (built from its embedded preset, of any family), unpack its coding
    tables and check its fingerprint."""
    from safetensors.torch import load_file

    state = load_file(str(path))
    packed: dict[str, dict[str, torch.Tensor]] = {}
    for key in [k for k in state if TABLE_MARKER in k]:
        name, field = key.split(TABLE_MARKER)
        packed.setdefault(name, {})[field] = state.pop(key)
    missing, unexpected = set(model.state_dict()) - set(state), set(state) - set(model.state_dict())
    if missing or unexpected:
        key = sorted(missing or unexpected)[0]
        raise WeightsError(f"{path}: tensor '{key}' is {'missing' if missing else 'unexpected'} for preset {preset_name}")
    model.load_state_dict(state)
    if packed:
        try:
            tables = {name: FactorizedTable.unpack(t) for name, t in packed.items()}
        except (KeyError, ValueError) as exc:
            raise WeightsError(f"{path}: coding tables are damaged ({exc})") from None
    else:
        log.warning("%s: export has no coding tables (written before they were stored); computing them now", path)
        tables = coding_tables(model)
    fingerprint = weights_fingerprint(model)
    stored = meta.get("fingerprint")
    if stored is None:
        log.warning("%s: export has no weights fingerprint (written before they were stored); using %s", path,
                    fingerprint[:16])
    elif stored != fingerprint:
        raise WeightsError(
            f"{path}: the weights do not match the fingerprint stored with them ({fingerprint[:16]}… against "
            f"{stored[:16]}…): the file was damaged or edited after export; re-export it from its checkpoint"
        )
    return ModelExport(model=model.to(device), fingerprint=fingerprint, tables=tables, path=path)


def resolve_weights(path: str | Path) -> Path:
    """A ``.safetensors`` file as given, or for a run directory the export of its furthest stage in schedule
    order (exports are named ``<stage index>-<stage name>.safetensors``; file times play no part)."""
    path = Path(path)
    if path.is_dir():
        files = sorted((path / EXPORT_DIR).glob("*.safetensors"))
        staged = sorted((int(p.name.split("-", 1)[0]), p.name, p) for p in files if p.name.split("-", 1)[0].isdigit())
        if staged:
            return staged[-1][2]
        if len(files) == 1:
            return files[0]
        if not files:
            raise WeightsError(f"{path}: run directory has no exported weights in {EXPORT_DIR}/")
        raise WeightsError(f"{path}: {EXPORT_DIR}/ holds {len(files)} exports without a stage index "
                           f"({', '.join(p.name for p in files)}); give the file itself")
    if not path.is_file():
        raise WeightsError(f"{path}: checkpoint not found")
    return path


def weights_fingerprint(model: VideoCodec) -> str:
    """SHA-256 over the preset and every tensor's bytes in key order: identifies the exact weights."""
    digest = hashlib.sha256(json.dumps(model.config.model_dump(mode="json"), sort_keys=True).encode())
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()
