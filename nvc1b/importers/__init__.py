"""Adapters from published checkpoint formats (DCVC-SDD, DCVC-DC) to nvc1b's state dict and exports."""
