"""A GPU's choices, re-enacted at the torch-function level, so that a forward pass on the meta device keeps the
dtypes and autograd saves the tensors it would on a GPU: CUDA bf16 autocast (torch.autocast does nothing on the
meta device) and the fused attention kernel (the meta device would run the math path, which keeps the
attention probabilities).

The autocast op lists follow torch's CUDA policy (aten/src/ATen/autocast_mode.cpp): matrix products,
convolutions and attention run in bf16 (fp32 weights are cast once per forward and the casts cached);
exponentials, logarithms, powers, norms, losses, softmax and up-sampling run in fp32; ops with several inputs
of mixed precision run in the widest. Anything not listed keeps its input dtype, as under autocast. While the
emulation is active, CUDA's autocast flag is on (``torch.is_autocast_enabled('cuda')``), and a region that turns
CUDA autocast off (``torch.autocast('cuda', enabled=False)``, as ``nvc1b.model.precision.fp32_region`` does) runs
its ops as written, as on a GPU. Attention
with a mask (the Swin blocks) runs as CUDA's memory-efficient kernel, which keeps q, k, v, the mask, the output
and its log-sum-exp for backward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map

LOWER_PRECISION = frozenset({
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "convolution",
    "linear", "matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "addmm", "addbmm", "baddbmm", "addmv", "addr",
    "einsum", "prelu", "scaled_dot_product_attention",
})
"""Ops autocast runs in bf16 (inputs cast down, weights through the per-forward cache)."""
FP32 = frozenset({
    "exp", "expm1", "log", "log1p", "log2", "log10", "pow", "__pow__", "__rpow__", "reciprocal", "rsqrt", "softplus",
    "layer_norm", "group_norm", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "cosine_similarity", "dist",
    "cdist", "renorm", "logsumexp", "interpolate", "upsample", "upsample_bilinear", "upsample_nearest", "acos",
    "asin", "cosh", "sinh", "tan", "erfinv",
})
"""Ops autocast runs in fp32 (bf16 inputs cast up)."""
FP32_OUTPUT = frozenset({"softmax", "log_softmax", "cumsum", "cumprod", "sum", "prod"})
"""Ops autocast asks for an fp32 result (``dtype=float32``) without casting the input."""
PROMOTE = frozenset({"grid_sample", "addcmul", "addcdiv", "atan2", "cross", "dot", "index_put", "scatter_add"})
"""Ops autocast runs in the widest floating dtype of their inputs."""


def _is_castable(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and t.dtype in (torch.float32, torch.float16, torch.bfloat16)


class GpuEmulation(TorchFunctionMode):
    """``with GpuEmulation():`` behaves like ``torch.autocast('cuda', torch.bfloat16)`` with CUDA's fused attention,
    on any device; ``GpuEmulation(dtype=None)`` only swaps in the fused attention (fp32 training).

    Casts of fp32 leaf tensors that require grad (the weights) are cached while ``caching`` is on, as autocast
    caches them for one forward; ``cached_bytes`` is what those copies occupy.
    """

    def __init__(self, dtype: torch.dtype | None = torch.bfloat16):
        super().__init__()
        self.dtype = dtype
        self.caching = True
        self._cache: dict[int, torch.Tensor] = {}
        self._saved: list[tuple[bool, torch.dtype]] = []

    def __enter__(self):
        if self.dtype is not None:  # the state torch.autocast('cuda', dtype) sets; CPU tensors do not dispatch on it
            self._saved.append((torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda")))
            torch.set_autocast_enabled("cuda", True)
            torch.set_autocast_dtype("cuda", self.dtype)
        return super().__enter__()

    def __exit__(self, exc_type, exc_value, traceback):
        if self.dtype is not None:
            enabled, dtype = self._saved.pop()
            torch.set_autocast_enabled("cuda", enabled)
            torch.set_autocast_dtype("cuda", dtype)
        return super().__exit__(exc_type, exc_value, traceback)

    @property
    def cached_bytes(self) -> int:
        return sum(t.untyped_storage().nbytes() for t in self._cache.values())

    def clear_cache(self) -> None:
        """Drop the cached weight casts (autocast does this when its outermost region exits)."""
        self._cache.clear()

    def _cast(self, t: Any, dtype: torch.dtype) -> Any:
        if not _is_castable(t) or t.dtype == dtype:
            return t
        if dtype == self.dtype and self.caching and t.is_leaf and t.requires_grad:
            cached = self._cache.get(id(t))
            if cached is None:
                cached = self._cache[id(t)] = t.to(dtype)
            return cached
        return t.to(dtype)

    def __torch_function__(self, func: Callable, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if self.dtype is not None and torch.is_autocast_enabled("cuda"):
            args, kwargs = self._autocast(name, args, kwargs)
        if name == "scaled_dot_product_attention":
            return _efficient_attention(*args, **kwargs)
        return func(*args, **kwargs)

    def _autocast(self, name: str, args, kwargs):
        if name in LOWER_PRECISION:
            args, kwargs = tree_map(lambda t: self._cast(t, self.dtype), (args, kwargs))
        elif name in FP32:
            args, kwargs = tree_map(lambda t: self._cast(t, torch.float32), (args, kwargs))
        elif name in FP32_OUTPUT and kwargs.get("dtype") is None and _first_float(args) is not None:
            if _first_float(args).dtype != torch.float32:
                kwargs = {**kwargs, "dtype": torch.float32}
        elif name in PROMOTE:
            floats = [t for t in _flat(args, kwargs) if _is_castable(t)]
            if floats:
                widest = max((t.dtype for t in floats), key=lambda d: torch.finfo(d).bits)
                args, kwargs = tree_map(lambda t: self._cast(t, widest), (args, kwargs))
        return args, kwargs


def bf16_exact(t: torch.Tensor) -> bool:
    """Every value of ``t`` is representable in bf16: what a tensor computed in bf16 and cast up looks like."""
    return bool((t.detach().to(torch.bfloat16).float() == t.detach().float()).all())


class DtypeRecorder(TorchFunctionMode):
    """Records what grid_sample receives (input dtype, grid dtype, whether every grid value is bf16-representable)
    and the result dtypes of conv2d and matmul. Entered outside ``GpuEmulation`` it sees the emulation's casts;
    under real CUDA autocast the dispatcher casts below it, so the result dtypes are the kernels' dtypes."""

    def __init__(self):
        super().__init__()
        self.grids: list[tuple[torch.dtype, torch.dtype, bool]] = []
        self.convs: list[torch.dtype] = []
        self.matmuls: list[torch.dtype] = []

    def __torch_function__(self, func: Callable, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        out = func(*args, **kwargs)
        if name == "grid_sample":
            grid = args[1] if len(args) > 1 else kwargs["grid"]
            self.grids.append((args[0].dtype, grid.dtype, bf16_exact(grid)))
        elif name == "conv2d":
            self.convs.append(out.dtype)
        elif name == "matmul":
            self.matmuls.append(out.dtype)
        return out


def _efficient_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                         enable_gqa=False):
    """F.scaled_dot_product_attention as CUDA's memory-efficient kernel computes it (and saves for backward)."""
    if enable_gqa:
        raise NotImplementedError("grouped-query attention is not emulated")
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        attn_mask = torch.zeros_like(attn_mask, dtype=query.dtype).masked_fill(~attn_mask, float("-inf"))
    if attn_mask is not None:
        attn_mask = attn_mask.to(query.dtype).expand(query.shape[0], query.shape[1], query.shape[2], key.shape[2])
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value))
    out = torch.ops.aten._scaled_dot_product_efficient_attention(
        query, key, value, attn_mask, needs_grad, dropout_p, is_causal, scale=scale)
    return out[0]


def backward_under(mode: GpuEmulation, loss: torch.Tensor) -> None:
    """``loss.backward()`` with ``mode`` active, so that checkpointed regions recompute under the emulation too.

    ``Tensor.backward`` is itself a torch function: a mode handling it is off while it runs. The autograd engine
    is therefore entered directly, below the torch-function layer.
    """
    from torch.autograd.graph import _engine_run_backward

    with mode:
        _engine_run_backward((loss,), (torch.ones_like(loss),), False, False, (), allow_unreachable=True,
                             accumulate_grad=True)


def _flat(args, kwargs) -> list:
    out: list = []
    tree_map(out.append, (args, kwargs))
    return out


def _first_float(args) -> torch.Tensor | None:
    for a in args:
        if _is_castable(a):
            return a
    return None
