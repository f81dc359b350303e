"""Initialisation of a freshly built codec.

``"default"`` keeps PyTorch's per-layer initialisation. ``"zero-residual"`` also sets the last layer of every
residual branch to zero (Goyal et al. 2017's zero-γ, Fixup, SkipInit), so each residual block starts as its
shortcut: the coders start as their shortcut paths (strided 1×1 convolutions down, sub-pixel convolutions up),
nearly linear and without the growth of activations through stacked gated blocks; the branches then grow from
zero. The function of a trained model is unchanged: loaded weights replace every initial value.
"""

from __future__ import annotations

from typing import Literal, get_args

from torch import nn

from .layers import ConvFFN, DepthConv, ResBlock, StridedResBlock, UpsampleResBlock

Init = Literal["default", "zero-residual"]
INITS: tuple[str, ...] = get_args(Init)


def _branch_end(module: nn.Module) -> nn.Conv2d | None:
    """The last layer of a residual block's branch (the layer whose output is added to the shortcut)."""
    if isinstance(module, ResBlock | StridedResBlock):
        return module.conv2
    if isinstance(module, UpsampleResBlock):
        return module.conv
    if isinstance(module, DepthConv):
        return module.pw2
    if isinstance(module, ConvFFN):
        return module.fc2
    return None


def initialise(model: nn.Module, init: str = "default") -> int:
    """Apply ``init`` to a freshly built ``model``; returns how many residual branches were set to zero."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")
    if init == "default":
        return 0
    count = 0
    for module in model.modules():
        end = _branch_end(module)
        if end is not None:
            nn.init.zeros_(end.weight)
            if end.bias is not None:
                nn.init.zeros_(end.bias)
            count += 1
    return count
