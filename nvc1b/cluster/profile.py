"""Cluster profiles (``cluster/*.yaml``): the hardware and the site's SLURM settings a run is submitted with."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, PositiveInt, model_validator

from ..config.loading import Strict, read_yaml, validate


class ClusterProfile(Strict):
    """One kind of allocation: N nodes × G GPUs, and how to get a job running on it."""

    name: str
    """Short name used in job names."""
    description: str = ""
    nodes: PositiveInt = 1
    """Nodes per training job."""
    gpus_per_node: int = Field(0, ge=0)
    """GPUs per node (0: CPU-only, for local tests and demos)."""
    gpu_type: Optional[str] = None
    """GRES type requested with the GPUs (for example a40, a800); None asks for any."""
    gpu_memory_gb: float = Field(0, ge=0)
    """Memory of one GPU, for memory planning."""
    interconnect_gbps: float = Field(0, ge=0)
    """Bandwidth per GPU for gradient communication in Gbit/s (the slowest link of the ring); 0 = unknown."""
    procs_per_node: Optional[PositiveInt] = None
    """Training processes per node; defaults to gpus_per_node (1 on a CPU-only node)."""
    cpus_per_task: PositiveInt = 8
    """CPU cores of the one task (launcher) per node: data workers and the training processes share them."""
    mem: str = "0"
    """Memory per node as sbatch --mem takes it ('0' = all of the node's memory)."""
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    constraint: Optional[str] = None
    time_limit: str = "24:00:00"
    """Wall-clock limit per job; a stage longer than this checkpoints, requeues and continues."""
    warning_seconds: PositiveInt = 600
    """SLURM sends the warning signal this long before the time limit: enough for a step and a checkpoint."""
    setup: list[str] = []
    """Shell lines run first on the node (module load …, exports)."""
    activate: Optional[str] = None
    """Line that activates the environment (a venv's activate, a container wrapper)."""
    python: str = "python"
    """Python interpreter on the nodes, after setup and activation."""
    extra_sbatch: list[str] = []
    """Further '#SBATCH' options, without the prefix (for example '--exclusive')."""
    zero_stage: Optional[Literal[1, 2, 3]] = None
    """ZeRO stage for this hardware (overrides the schedule's)."""
    micro_batch: Optional[PositiveInt] = None
    """Clips per GPU per forward pass for this hardware (overrides the schedule's)."""

    @model_validator(mode="after")
    def _procs(self) -> "ClusterProfile":
        if self.procs_per_node is not None and self.gpus_per_node and self.procs_per_node != self.gpus_per_node:
            raise ValueError("key 'procs_per_node': must equal gpus_per_node on a GPU node (one process per GPU)")
        return self

    @property
    def procs(self) -> int:
        """Training processes per node."""
        return self.procs_per_node or self.gpus_per_node or 1

    @property
    def world_size(self) -> int:
        return self.nodes * self.procs


def load_profile(path: str | Path) -> ClusterProfile:
    """Read and validate a profile; its name defaults to the file name."""
    path = Path(path)
    data = read_yaml(path)
    data.setdefault("name", path.stem)
    return validate(ClusterProfile, data, str(path))
