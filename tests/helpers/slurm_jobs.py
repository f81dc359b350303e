"""What the SLURM tests share: a small two-stage schedule, the local profile, `nvc1b` in a subprocess, waiting
for job states."""

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def write_schedule(path: Path, manifest: Path, inter_steps: int = 6, **top) -> Path:
    data = {
        "preset": "tiny", "data": {"train": str(manifest), "workers": 0}, "crop": 32, "global_batch": 2,
        "micro_batch": 2, "zero_stage": 1, "checkpoint_every": 2, **top,
        "stages": [
            {"name": "intra", "frames": 1, "parts": "Intra", "loss": "intra", "lr": 1e-3, "steps": 2},
            {"name": "inter", "frames": 2, "parts": "Inter", "loss": "meRD", "lr": 1e-3, "steps": inter_steps},
        ],
    }
    path.write_text(yaml.safe_dump(data))
    return path


def write_profile(path: Path, **changes) -> Path:
    """cluster/local.yaml with this interpreter (and ``changes``); the profile's name is the file's stem."""
    profile = yaml.safe_load((ROOT / "cluster" / "local.yaml").read_text())
    profile.update(python=sys.executable, time_limit="00:30:00",
                   setup=["export OMP_NUM_THREADS=1", "export NVC1B_PROGRESS=0"], **changes)
    path.write_text(yaml.safe_dump(profile))
    return path


def nvc1b(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nvc1b", *args], capture_output=True, text=True, timeout=300)


def submit(schedule: Path, profile: Path, run_dir: Path, *options: str) -> list[str]:
    """`nvc1b submit` (with ``options`` such as --stages, --after); the job ids in stage order."""
    proc = nvc1b("submit", str(schedule), "--cluster", str(profile), "--run-dir", str(run_dir), *options)
    assert proc.returncode == 0, proc.stderr
    return [line.split()[-1] for line in proc.stdout.splitlines()]


def wait_for(predicate, timeout: float = 300, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def state(slurm, job_id: str) -> str:
    return slurm.job(job_id).get("JobState", "UNKNOWN")


def digests(run_dir: Path) -> dict[str, str]:
    """sha256 of each export of a run."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((Path(run_dir) / "exports").glob("*"))}


def job_log(run_dir: Path, stage: str, job: str = "*") -> str:
    """The output file of the stage's job (every start of it, appended)."""
    return next((Path(run_dir) / "slurm").glob(f"*-{stage}-{job}.out")).read_text()
