"""Gradient communication and kernel settings of a training step on GPUs.

ZeRO's gradient reduction is bucketed (buckets of ``REDUCE_BUCKET_ELEMENTS``: about 7 per full 1.36B-parameter
step, so the first buckets reduce while backward still runs) and, on GPUs, overlapped with backward and sent as
bf16 while the optimizer keeps fp32 master weights. cuDNN autotuning and TF32 matmuls are on for training only;
coding (``nvc1b.coding.runtime``) sets its own deterministic flags. On the CPU (gloo, tests) the reduction stays
fp32 and synchronous.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

REDUCE_BUCKET_ELEMENTS = 200_000_000
"""Gradient elements per reduce bucket and parameter elements per all-gather bucket (800 MB of fp32 each)."""
COMMUNICATION_DTYPE = "bf16"
"""Gradient reduction precision on GPUs (the optimizer's master weights and moments stay fp32)."""


def communication_config(device: torch.device) -> tuple[dict, dict]:
    """(entries for DeepSpeed's ``zero_optimization``, top-level entries) for a step on ``device``."""
    zero = {"reduce_scatter": True, "contiguous_gradients": True, "reduce_bucket_size": REDUCE_BUCKET_ELEMENTS,
            "allgather_bucket_size": REDUCE_BUCKET_ELEMENTS}
    if device.type != "cuda":
        return zero, {}
    return {**zero, "overlap_comm": True}, {"communication_data_type": COMMUNICATION_DTYPE}


def with_communication(config: dict, device: torch.device) -> dict:
    """A DeepSpeed config with the communication settings for ``device`` merged in."""
    zero, top = communication_config(device)
    return {**config, **top, "zero_optimization": {**config.get("zero_optimization", {}), **zero}}


@contextlib.contextmanager
def training_kernels(device: torch.device) -> Iterator[None]:
    """cuDNN autotuning and TF32 while a stage trains on a GPU; the previous flags come back afterwards."""
    if device.type != "cuda":
        yield
        return
    saved = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def step_communication_bytes(trainable: int, params_gathered: int, world_size: int, gradient_bytes: int = 2,
                             parameter_bytes: int = 4) -> float:
    """Bytes one rank sends in a ZeRO-1/2 optimizer step over a ring: reduce-scatter of the gradients and
    all-gather of the updated parameters, each (N−1)/N of the full size (0 on one rank)."""
    share = (world_size - 1) / world_size
    return share * (trainable * gradient_bytes + params_gathered * parameter_bytes)
