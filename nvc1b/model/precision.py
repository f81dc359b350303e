"""Precision boundaries under bf16 autocast: the parts of the model whose numbers must be fp32.

Convolutions run in bf16 under autocast. Warping (sampling grids, grid_sample, the offsets of offset-diversity
alignment) and the whole rate path (quantisation, the factorized prior, Laplace bits, quadtree masks) are computed
in fp32: a bf16 sampling grid lands up to half a pixel off at 256 px width, and bits estimated in bf16 are not the
bits the fp32 coder writes.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor

AUTOCAST_DEVICES = ("cuda", "cpu")
"""Device types whose autocast an fp32 region turns off."""


def fp32_region() -> contextlib.AbstractContextManager:
    """A region with autocast off for whichever device type has it on (a no-op outside autocast)."""
    for device in AUTOCAST_DEVICES:
        if torch.is_autocast_enabled(device):
            return torch.autocast(device, enabled=False)
    return contextlib.nullcontext()


def fp32(x: Tensor) -> Tensor:
    """``x`` as fp32 when it is a half-precision tensor (bf16/fp16), else unchanged (fp32 and fp64 stay)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
