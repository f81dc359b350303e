"""Rendering one sbatch script per stage from ``cluster/sbatch.template`` and a cluster profile."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import jinja2

from ..errors import ConfigError
from .profile import ClusterProfile

TEMPLATE = Path(__file__).resolve().parents[2] / "cluster" / "sbatch.template"


def job_name(run_dir: Path, index: int, stage: str) -> str:
    """nvc1b-<run>-<NN>-<stage>, safe for SLURM and file names."""
    run = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(run_dir).resolve().name)
    return f"nvc1b-{run}-{index:02d}-{stage}"


def render_stage_script(
    profile: ClusterProfile, schedule_path: Path, run_dir: Path, index: int, stage: str,
    template: Path = TEMPLATE, extra_args: str = "",
) -> str:
    """The sbatch script that trains stage ``index`` of the schedule in ``run_dir``."""
    try:
        text = template.read_text()
    except OSError as exc:
        raise ConfigError(f"{template}: cannot read the sbatch template ({exc.strerror})") from None
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["quote"] = lambda value: shlex.quote(str(value))
    try:
        return env.from_string(text).render(
            p=profile, schedule=Path(schedule_path).resolve(), run_dir=Path(run_dir).resolve(), index=index,
            stage=stage, job_name=job_name(run_dir, index, stage), log_dir=Path(run_dir).resolve() / "slurm",
            extra_args=extra_args,
        )
    except jinja2.TemplateError as exc:
        raise ConfigError(f"{template}: {exc}") from None
