"""Process-group setup for one process, torchrun, the deepspeed launcher or SLURM's srun, on GPU (NCCL) or
CPU (gloo), and the few collectives the trainer needs."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as tdist

from ..errors import ConfigError, NvcError

T = TypeVar("T")


DEVICE_ENV = "NVC1B_DEVICE"
"""'cpu' trains on the CPU over gloo even where CUDA is present (tests, several ranks on one GPU's machine);
'cuda' or unset: the GPU when there is one."""


def training_device() -> str:
    """'cuda' or 'cpu': the device type this process trains on (see DEVICE_ENV)."""
    wanted = os.environ.get(DEVICE_ENV, "").strip().lower()
    if wanted not in ("", "cpu", "cuda"):
        raise ConfigError(f"{DEVICE_ENV}={wanted!r}: expected 'cpu' or 'cuda'")
    if wanted == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{DEVICE_ENV}=cuda but torch sees no CUDA device")
    return "cpu" if wanted == "cpu" or not torch.cuda.is_available() else "cuda"


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env_from_slurm() -> None:
    """srun sets SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID; torch expects RANK/WORLD_SIZE/LOCAL_RANK."""
    if "RANK" not in os.environ and "SLURM_PROCID" in os.environ and "MASTER_ADDR" in os.environ:
        os.environ["RANK"] = os.environ["SLURM_PROCID"]
        os.environ["WORLD_SIZE"] = os.environ["SLURM_NTASKS"]
        os.environ["LOCAL_RANK"] = os.environ.get("SLURM_LOCALID", "0")


def setup_distributed() -> DistInfo:
    """Initialise torch.distributed (through DeepSpeed) from the launcher's environment, or as a single process."""
    _env_from_slurm()
    if "RANK" not in os.environ:
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if training_device() == "cuda":
        gpus = torch.cuda.device_count()
        if local_rank >= gpus:
            raise ConfigError(
                f"rank {rank} has local rank {local_rank} but this node has {gpus} GPU(s): start at most {gpus} "
                f"processes per node, or set {DEVICE_ENV}=cpu to train on the CPU"
            )
        torch.cuda.set_device(local_rank)
        device, backend = torch.device("cuda", local_rank), "nccl"
    else:
        os.environ["DS_ACCELERATOR"] = "cpu"  # even where CUDA exists: DeepSpeed must not pick its CUDA accelerator
        device, backend = torch.device("cpu"), "gloo"
    import deepspeed

    if device.type == "cpu":
        _skip_shared_memory_allreduce()
    if not tdist.is_initialized():
        deepspeed.init_distributed(dist_backend=backend, verbose=False)
    return DistInfo(rank, world, local_rank, device)


def _skip_shared_memory_allreduce() -> None:
    """On CPU, DeepSpeed compiles a shared-memory all-reduce op (~80 s on a fresh machine) at start-up.
    gloo is enough for CPU runs (tests, demos), so mark that op unavailable before the backend is built."""
    import deepspeed.ops

    compatible = deepspeed.ops.__compatible_ops__
    compatible["deepspeed_shm_comm"] = False


def barrier() -> None:
    if tdist.is_initialized():
        tdist.barrier()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank if ``flag`` is True on some rank."""
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    if tdist.is_initialized():
        tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
    return bool(t.item() > 0)


def mean_over_ranks(values: dict[str, torch.Tensor], device: torch.device) -> dict[str, float]:
    """Average scalar metrics over ranks (one all-reduce)."""
    keys = sorted(values)
    t = torch.stack([values[k].detach().float().to(device) for k in keys])
    if tdist.is_initialized():
        tdist.all_reduce(t)
        t /= tdist.get_world_size()
    return {k: float(v) for k, v in zip(keys, t.tolist())}


def on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and hand its result, or the NvcError it raised, to every rank (so a user error
    found by rank 0 stops all ranks at once instead of leaving them waiting in a collective)."""
    result, error = None, None
    if not tdist.is_initialized() or tdist.get_rank() == 0:
        try:
            result = fn()
        except NvcError as exc:
            error = exc
    if tdist.is_initialized() and tdist.get_world_size() > 1:
        box = [(result, error)]
        tdist.broadcast_object_list(box, src=0)
        result, error = box[0]
    if error is not None:
        raise error
    return result
