"""Adapters from published checkpoint formats (DCVC-SDD, DCVC-DC) to nvc1b's state dict and exports."""

from .checkpoints import read_dcvc_checkpoint

__all__ = ["read_dcvc_checkpoint"]
