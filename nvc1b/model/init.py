"""Initialisation of a freshly built codec.

``"default"`` keeps PyTorch's per-layer initialisation. ``"zero-residual"`` also sets the last layer of every
residual branch to zero (Goyal et al. 2017's zero-γ, Fixup, SkipInit), so each residual block starts as its
shortcut: the coders start as their shortcut paths (strided 1×1 convolutions down, sub-pixel convolutions up),
nearly linear and without the growth of activations through stacked gated blocks; the branches then grow from
zero. ``"pass-through"`` is zero-residual plus a codec that works at step 0: the intra coder carries the frame's
R, G and B in its first three channels, as 16×16 block means in the latent, and each P-frame starts as its
reference with the residual's block means coded the same way, and ẑ tells the priors the rate point
(``nvc1b.model.pass_through``): the codec codes in colour before it has seen any data and learns the rest from
there. The function of a trained model is unchanged: loaded weights replace every initial value.
"""

from __future__ import annotations

from typing import Literal, get_args

from torch import nn

from .layers import ConvFFN, DepthConv, ResBlock, StridedResBlock, UpsampleResBlock
from .pass_through import pass_through_intra, pass_through_pframes

Init = Literal["default", "zero-residual", "pass-through"]
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
    count = _zero_residual(model)
    if init == "pass-through":
        intra = getattr(model, "intra", None)
        if intra is None:
            raise ValueError(f"init {init!r} needs a codec with an intra coder, not {type(model).__name__}")
        pass_through_intra(intra)
        pass_through_pframes(model)
    return count


def _zero_residual(model: nn.Module) -> int:
    count = 0
    for module in model.modules():
        end = _branch_end(module)
        if end is not None:
            nn.init.zeros_(end.weight)
            if end.bias is not None:
                nn.init.zeros_(end.bias)
            count += 1
    return count
