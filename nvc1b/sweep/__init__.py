"""Scaling studies: sweep specs (``spec``), models resolved by solving widths (``build``), the plan with memory
per GPU (``plan``), SLURM submission (``submit``), local runs (``local``), and the BD-rate report (``report``),
connected to the evaluator in one place (``evaluation``)."""
