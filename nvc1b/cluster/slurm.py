"""The few SLURM commands nvc1b runs (sbatch, squeue, scontrol, scancel), with errors as one-line NvcErrors."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import NvcError


class SlurmError(NvcError):
    """A SLURM command is missing or refused a request."""


def _run(args: list[str], what: str) -> str:
    if shutil.which(args[0]) is None:
        raise SlurmError(f"{args[0]} not found: SLURM's client commands must be on PATH to {what}")
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()
        raise SlurmError(f"{' '.join(args[:2])} failed to {what}: {message[-1] if message else 'exit ' + str(proc.returncode)}")
    return proc.stdout


def sbatch_command(script: Path, dependency: str | None = None) -> list[str]:
    """The sbatch command line that submits ``script`` (after ``dependency``, e.g. 'afterok:123')."""
    args = ["sbatch", "--parsable", "--kill-on-invalid-dep=yes"]
    if dependency:
        args.append(f"--dependency={dependency}")
    return args + [str(script)]


def sbatch(script: Path, dependency: str | None = None, test_only: bool = False) -> str:
    """Submit ``script``; returns the job id (or sbatch's message with ``test_only``)."""
    if test_only:
        proc = subprocess.run(["sbatch", "--test-only", str(script)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SlurmError(f"sbatch --test-only {script}: {proc.stderr.strip()}")
        return proc.stderr.strip()
    return _run(sbatch_command(script, dependency), f"submit {script}").strip().split(";")[0]


@dataclass(frozen=True)
class JobState:
    job_id: str
    state: str
    """PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, REQUEUED, … or UNKNOWN once SLURM forgot it."""
    reason: str = ""
    elapsed: str = ""
    nodes: str = ""
    restarts: int = 0
    exit_code: str = ""


def job_states(job_ids: list[str]) -> dict[str, JobState]:
    """States of jobs the controller still knows (scontrol keeps finished jobs for MinJobAge seconds)."""
    states = {}
    for job_id in job_ids:
        proc = subprocess.run(["scontrol", "show", "job", "--oneliner", job_id], capture_output=True, text=True)
        if proc.returncode != 0 or not proc.stdout.strip():
            states[job_id] = JobState(job_id, "UNKNOWN")
            continue
        fields = dict(tok.split("=", 1) for tok in proc.stdout.split() if "=" in tok)
        states[job_id] = JobState(
            job_id, fields.get("JobState", "UNKNOWN"), fields.get("Reason", ""), fields.get("RunTime", ""),
            fields.get("NodeList", ""), int(fields.get("Restarts", "0") or 0), fields.get("ExitCode", ""),
        )
    return states


def scancel(job_ids: list[str]) -> None:
    if job_ids:
        _run(["scancel", *job_ids], "cancel jobs " + ",".join(job_ids))
