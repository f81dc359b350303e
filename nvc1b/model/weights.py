"""Loading pre-trained weights of one part (SpyNet, the intra coder, …) from a local file. Never downloads."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import WeightsError

log = logging.getLogger(__name__)

_CONTAINER_KEYS = ("state_dict", "model", "net", "module")


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a ``.safetensors`` file or of a torch checkpoint (plain or nested under state_dict/model/net)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found (nvc1b loads weights from local files only)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file from the user's side
        raise WeightsError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from None
    for key in _CONTAINER_KEYS:
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not all(isinstance(v, Tensor) for v in data.values()):
        raise WeightsError(f"{path}: not a state dict of tensors")
    return data


def _strip(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    if prefix:
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel/DDP
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def load_part_weights(module: nn.Module, path: str | Path, prefix: str = "", what: str = "the part") -> str:
    """Load every parameter and buffer of ``module`` from ``path`` (keys under ``prefix``).

    Keys are matched by name; when no name matches but the file holds the same number of tensors with the
    same shapes in the same order (another code base's naming of the same network), they are matched by
    position. Returns 'name' or 'position'. A missing tensor or a shape mismatch is a WeightsError naming
    the key and the file.
    """
    state = _strip(read_state_dict(path), prefix)
    if not state:
        raise WeightsError(f"{path}: no tensors under prefix '{prefix}'")
    target = module.state_dict()
    if any(k in target for k in state):
        missing = [k for k in target if k not in state]
        if missing:
            raise WeightsError(f"{path}: tensor '{prefix}{missing[0]}' for {what} is missing ({len(missing)} missing in all)")
        for key, value in target.items():
            if state[key].shape != value.shape:
                raise WeightsError(
                    f"{path}: tensor '{prefix}{key}' has shape {tuple(state[key].shape)} but {what} expects {tuple(value.shape)}"
                )
        module.load_state_dict({k: state[k] for k in target})
        return "name"
    source = list(state.items())
    if len(source) != len(target):
        raise WeightsError(f"{path}: {len(source)} tensors but {what} has {len(target)}, and no names match")
    mapped = {}
    for (src_key, src), (dst_key, dst) in zip(source, target.items()):
        if src.shape != dst.shape:
            raise WeightsError(
                f"{path}: tensor '{prefix}{src_key}' has shape {tuple(src.shape)} but {what} expects "
                f"{tuple(dst.shape)} at '{dst_key}'"
            )
        mapped[dst_key] = src
    module.load_state_dict(mapped)
    log.info("%s: matched %d tensors to %s by position", path, len(mapped), what)
    return "position"
