"""Exported weights: one ``.safetensors`` file holding the fp32 state dict and, in its metadata, the preset it
was built from, so a model can be rebuilt from the file alone. Written atomically."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from ..config.loading import validate
from ..config.model import ModelConfig
from ..errors import WeightsError
from .codec import VideoCodec

FORMAT = "nvc1b-model/1"
EXPORT_DIR = "exports"
"""Sub-directory of a run directory holding its exported weights."""


def save_model(model: VideoCodec, path: str | Path, extra: dict[str, str] | None = None) -> Path:
    """Write ``model``'s weights (fp32) and preset to ``path``; the file appears only once complete."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT, "preset": json.dumps(model.config.model_dump(mode="json")), **(extra or {})}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
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
    if meta.get("format") != FORMAT:
        raise WeightsError(f"{path}: not an nvc1b model export (format {meta.get('format')!r}, expected {FORMAT!r})")
    return meta


def load_model(path: str | Path, device: str | torch.device = "cpu") -> VideoCodec:
    """Rebuild the model stored in an exported ``.safetensors`` file (or the newest export of a run directory)."""
    from safetensors.torch import load_file

    path = resolve_weights(path)
    meta = read_metadata(path)
    config = validate(ModelConfig, json.loads(meta["preset"]), f"{path} (embedded preset)")
    model = VideoCodec(config)
    state = load_file(str(path))
    missing, unexpected = set(model.state_dict()) - set(state), set(state) - set(model.state_dict())
    if missing or unexpected:
        key = sorted(missing or unexpected)[0]
        raise WeightsError(f"{path}: tensor '{key}' is {'missing' if missing else 'unexpected'} for preset {config.name}")
    model.load_state_dict(state)
    return model.to(device)


def resolve_weights(path: str | Path) -> Path:
    """A ``.safetensors`` file as given, or for a run directory the newest file in its ``exports/``."""
    path = Path(path)
    if path.is_dir():
        exports = sorted((path / EXPORT_DIR).glob("*.safetensors"), key=lambda p: p.stat().st_mtime)
        if not exports:
            raise WeightsError(f"{path}: run directory has no exported weights in {EXPORT_DIR}/")
        return exports[-1]
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
