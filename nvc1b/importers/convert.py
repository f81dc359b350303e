"""Published DCVC checkpoints → nvc1b: a whole DCVC-SDD model (P-frame + DCVC-DC intra) as an export that
``encode``/``decode``/``eval`` and a schedule start from, or DCVC-DC's intra coder alone as an intra part file."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ..config.model import load_preset
from ..errors import WeightsError
from ..files import disk_full_reported
from ..model.codec import VideoCodec
from ..model.export import save_model
from ..model.intra import IntraCodec
from .checkpoints import read_dcvc_checkpoint
from .dcvc_dc import map_intra
from .dcvc_sdd import map_p_frame

SDD_PRESET = "sdd-21m"
"""The preset whose widths are DCVC-SDD's (P-frame) and DCVC-DC's (intra)."""


def read_published(path: str | Path) -> dict[str, Tensor]:
    """The state dict of a published checkpoint as the reference test scripts load it (``read_dcvc_checkpoint``)."""
    return read_dcvc_checkpoint(path)


def import_dcvc_sdd(p_checkpoint: str | Path, i_checkpoint: str | Path, preset: str = SDD_PRESET) -> VideoCodec:
    """A VideoCodec holding DCVC-SDD's P-frame model and DCVC-DC's intra model, every tensor mapped."""
    codec = VideoCodec(load_preset(preset))
    target = codec.state_dict()
    p_keys = {k: v for k, v in target.items() if not k.startswith("intra.")}
    i_keys = {k: v for k, v in target.items() if k.startswith("intra.")}
    state = map_p_frame(read_published(p_checkpoint), p_keys, str(p_checkpoint))
    state.update(map_intra(read_published(i_checkpoint), i_keys, str(i_checkpoint), prefix="intra."))
    codec.load_state_dict(state, strict=True)
    return codec.eval()


def import_dcvc_dc_intra(i_checkpoint: str | Path, preset: str = SDD_PRESET) -> dict[str, Tensor]:
    """nvc1b intra-coder tensors (IntraCodec keys) from DCVC-DC's intra checkpoint."""
    with torch.device("meta"):  # only the keys and shapes are needed
        target = IntraCodec(load_preset(preset).intra).state_dict()
    return map_intra(read_published(i_checkpoint), target, str(i_checkpoint))


def write_dcvc_sdd_export(p_checkpoint: str | Path, i_checkpoint: str | Path, out: str | Path,
                          preset: str = SDD_PRESET) -> Path:
    """Import and write an nvc1b export (weights, coding tables, fingerprint); atomic."""
    codec = import_dcvc_sdd(p_checkpoint, i_checkpoint, preset)
    extra = {"imported_from": f"DCVC-SDD {Path(p_checkpoint).name} + DCVC-DC intra {Path(i_checkpoint).name}"}
    return save_model(codec, out, extra=extra)


def write_intra_part(i_checkpoint: str | Path, out: str | Path, preset: str = SDD_PRESET) -> Path:
    """Import DCVC-DC's intra coder and write it as a ``.safetensors`` part file (IntraCodec keys), which an
    intra stage's ``weights:`` loads by name; atomic."""
    import os

    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in import_dcvc_dc_intra(i_checkpoint, preset).items()}
    bad = next((k for k, v in state.items() if not torch.isfinite(v).all()), None)
    if bad is not None:
        raise WeightsError(f"{i_checkpoint}: tensor mapped to '{bad}' holds NaN or infinite values")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    with disk_full_reported(out, tmp):
        save_file(state, str(tmp), metadata={"part": "intra", "imported_from": f"DCVC-DC {Path(i_checkpoint).name}"})
        os.replace(tmp, out)
    return out
