"""Reading the published DCVC-SDD and DCVC-DC checkpoints as their test scripts do, without running their code.

The reference scripts (``get_state_dict`` in both repositories' ``src/utils/stream_helper.py``) do
``torch.load(path, map_location="cpu")``, then take ``ckpt["state_dict"]`` if present, then ``ckpt["net"]`` if
present, then strip a ``module.`` prefix (DataParallel/DDP) from every key that has it. The published files
(``cvpr2023_image_psnr.pth.tar``, DCVC-SDD's P-frame ``.pth.tar``) are torch zip archives despite the name.
nvc1b does the same with ``weights_only=True``, so a file can hold tensors, containers and plain values but no
pickled code; a file that needs full unpickling is refused unless the caller trusts it.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from ..errors import WeightsError

_WRAPPERS = ("state_dict", "net")
"""Checked in this order, each at most once, as the reference's get_state_dict does."""
_PREFIX = "module."


def read_dcvc_checkpoint(path: str | Path, *, trust_pickle: bool = False) -> dict[str, Tensor]:
    """The tensors of a DCVC-SDD / DCVC-DC checkpoint, keyed as the reference model's state dict.

    ``trust_pickle=True`` allows a checkpoint that needs full unpickling (one that also pickled training
    objects); only for files from a trusted source, since unpickling can run code. Raises ``WeightsError`` with
    a one-line message naming the file for a missing, unreadable or not-a-state-dict file.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: checkpoint not found (nvc1b reads checkpoints from local files only)")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    data = _load(path, trust_pickle)
    for wrapper in _WRAPPERS:
        if isinstance(data, Mapping) and wrapper in data:
            data = data[wrapper]
    if not isinstance(data, Mapping):
        raise WeightsError(f"{path}: not a state dict (the file holds {type(data).__name__})")
    if not data:
        raise WeightsError(f"{path}: the state dict is empty")
    state: dict[str, Tensor] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise WeightsError(f"{path}: not a state dict (key {key!r} is {type(key).__name__}, not a name)")
        if not isinstance(value, Tensor):
            kind = type(value).__name__
            raise WeightsError(f"{path}: not a state dict of tensors: '{key}' holds {kind}, not a tensor")
        name = key.removeprefix(_PREFIX)
        if name in state:
            raise WeightsError(f"{path}: tensor '{name}' appears both with and without the '{_PREFIX}' prefix")
        state[name] = value
    return state


def _load(path: Path, trust_pickle: bool) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as exc:
        detail = _unpickler_detail(str(exc))
        if not trust_pickle and "Unsupported global" in detail:
            raise WeightsError(
                f"{path}: the checkpoint pickles objects other than tensors and plain values, so reading it would "
                f"run code from the file; re-save its state dict, or trust the file (trust_pickle) if you know its "
                f"source ({detail})"
            ) from None
        raise WeightsError(f"{path}: cannot read the checkpoint (not a torch checkpoint: {detail})") from None
    except EOFError:
        raise WeightsError(f"{path}: cannot read the checkpoint (the file is empty or truncated)") from None
    except (RuntimeError, OSError, ValueError, zipfile.BadZipFile, AttributeError, ModuleNotFoundError,
            ImportError, TypeError, KeyError) as exc:
        raise WeightsError(f"{path}: cannot read the checkpoint ({type(exc).__name__}: {exc})") from None


def _unpickler_detail(message: str) -> str:
    """The reason out of torch's multi-paragraph weights-only error ("Unsupported global: GLOBAL argparse...")."""
    _, _, rest = message.partition("WeightsUnpickler error:")
    reason = (rest or message).split("Check the documentation")[0].split(". Please use")[0]
    return " ".join(reason.split())[:200]


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: cannot read the safetensors file ({exc})") from None
    if not state:
        raise WeightsError(f"{path}: the state dict is empty")
    return {k.removeprefix(_PREFIX): v for k, v in state.items()}
