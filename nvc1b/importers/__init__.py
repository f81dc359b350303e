"""Foreign checkpoint formats read into plain state dicts (DCVC-SDD, DCVC-DC)."""

from .checkpoints import read_dcvc_checkpoint

__all__ = ["read_dcvc_checkpoint"]
